#include "ort_runtime.h"

#include <dlfcn.h>

#include <cstring>

#include "common.h"
#include "versions.h"

namespace tritonstack {

namespace {

// ORT's own name of an error code, as its Python API prints it ("INVALID_PROTOBUF").
const char* OrtCodeName(OrtErrorCode code) {
  static const char* const kNames[] = {"OK", "FAIL", "INVALID_ARGUMENT", "NO_SUCHFILE", "NO_MODEL",
                                       "ENGINE_ERROR", "RUNTIME_EXCEPTION", "INVALID_PROTOBUF", "MODEL_LOADED",
                                       "NOT_IMPLEMENTED", "INVALID_GRAPH", "EP_FAIL"};
  size_t index = static_cast<size_t>(code);
  return index < sizeof(kNames) / sizeof(kNames[0]) ? kNames[index] : "UNKNOWN";
}

}  // namespace

TRITONSERVER_Error* FromOrt(const OrtApi* api, OrtStatus* status, const std::string& context) {
  if (status == nullptr) return nullptr;
  OrtErrorCode code = api->GetErrorCode(status);
  std::string message = context + ": " + OrtCodeName(code) + ": " + api->GetErrorMessage(status);
  api->ReleaseStatus(status);
  return Error(code == ORT_INVALID_ARGUMENT ? TRITONSERVER_ERROR_INVALID_ARG : TRITONSERVER_ERROR_INTERNAL,
               message);
}

TRITONSERVER_Error* OrtRuntime::Load(const std::string& library_path, std::unique_ptr<OrtRuntime>* out) {
  if (library_path.empty()) {
    return Error(TRITONSERVER_ERROR_INVALID_ARG,
                 "the onnxruntime backend needs the ONNX Runtime library: pass "
                 "--backend-config=onnxruntime,ort-library=<path to libonnxruntime.so> (tritonstack serve does)");
  }
  std::unique_ptr<OrtRuntime> runtime(new OrtRuntime());
  runtime->handle_ = dlopen(library_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (runtime->handle_ == nullptr) {
    return Error(TRITONSERVER_ERROR_NOT_FOUND, "cannot open ONNX Runtime library " + library_path + ": " + dlerror());
  }
  auto get_base = reinterpret_cast<OrtGetApiBaseFn>(dlsym(runtime->handle_, "OrtGetApiBase"));
  const OrtApiBase* base = get_base != nullptr ? get_base() : nullptr;
  if (base == nullptr) {
    return Error(TRITONSERVER_ERROR_UNSUPPORTED, library_path + " does not export OrtGetApiBase; not ONNX Runtime");
  }
  runtime->version_ = base->GetVersionString();
  runtime->api_ = base->GetApi(kOrtApiVersion);
  std::string refusal = CheckOrtVersion(runtime->version_, runtime->api_ != nullptr);
  if (!refusal.empty()) return Error(TRITONSERVER_ERROR_UNSUPPORTED, refusal + " (" + library_path + ")");
  TS_RETURN_IF_ERROR(runtime->CheckLayout());
  OrtEnv* env = nullptr;
  TS_RETURN_IF_ORT(runtime->api_, runtime->api_->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "tritonstack", &env),
                   "creating the ONNX Runtime environment");
  runtime->env_ = runtime->Own(env);
  *out = std::move(runtime);
  return nullptr;
}

// The first three OrtApi members are CreateStatus, GetErrorCode, GetErrorMessage: a round trip through
// them shows the table starts where our declaration says it does.
TRITONSERVER_Error* OrtRuntime::CheckLayout() const {
  static const char kProbe[] = "tritonstack layout probe";
  OrtPtr<OrtStatus> status = Own(api_->CreateStatus(ORT_INVALID_GRAPH, kProbe));
  bool ok = status != nullptr && api_->GetErrorCode(status.get()) == ORT_INVALID_GRAPH &&
            std::strcmp(api_->GetErrorMessage(status.get()), kProbe) == 0;
  if (ok) return nullptr;
  return Error(TRITONSERVER_ERROR_UNSUPPORTED,
               "ONNX Runtime " + version_ + ": its C API table does not match our declaration "
               "(CreateStatus/GetErrorMessage round trip failed)");
}

OrtRuntime::~OrtRuntime() {
  env_.reset();
  // The library stays mapped: ORT keeps thread-local state and atexit hooks; unmapping it is unsafe.
}

}  // namespace tritonstack
