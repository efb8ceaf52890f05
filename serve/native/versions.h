// Load-time version checks: pure functions, so the unit tests can call them without a server.
#pragma once

#include <cstdint>
#include <string>

namespace tritonstack {

// "" when Triton's backend API (major, minor) can run this backend, else a refusal naming both versions.
std::string CheckTritonApi(uint32_t major, uint32_t minor);

// "" when an ONNX Runtime whose GetVersionString() is `version` serves the C API version we declare
// (`api_served`: whether GetApi(kOrtApiVersion) returned a table), else a refusal naming both versions.
std::string CheckOrtVersion(const std::string& version, bool api_served);

}  // namespace tritonstack
