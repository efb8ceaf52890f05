#include "versions.h"

#include <cstdio>

#include "ort_abi.h"
#include "triton_abi.h"

namespace tritonstack {

std::string CheckTritonApi(uint32_t major, uint32_t minor) {
  if (major == kTritonBackendApiMajor && minor >= kTritonBackendApiMinor) return "";
  return "Triton backend API " + std::to_string(major) + "." + std::to_string(minor) +
         " cannot run this onnxruntime backend, built against backend API " +
         std::to_string(kTritonBackendApiMajor) + "." + std::to_string(kTritonBackendApiMinor) +
         " (Triton 2.51 / r24.10); use a Triton with backend API " + std::to_string(kTritonBackendApiMajor) +
         ".x >= " + std::to_string(kTritonBackendApiMinor) + " or `tritonstack serve --runner python`";
}

std::string CheckOrtVersion(const std::string& version, bool api_served) {
  unsigned major = 0, minor = 0;
  bool parsed = std::sscanf(version.c_str(), "%u.%u", &major, &minor) == 2;
  if (parsed && major == 1 && minor >= kOrtApiVersion && api_served) return "";
  std::string served = parsed && major == 1 ? "C API versions up to " + std::to_string(minor)
                                            : "an unknown C API version";
  return "ONNX Runtime " + version + " serves " + served + "; this backend declares ORT C API " +
         std::to_string(kOrtApiVersion) + " (needs onnxruntime >= 1." + std::to_string(kOrtApiVersion) +
         "); install a newer onnxruntime wheel";
}

}  // namespace tritonstack
