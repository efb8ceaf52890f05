// ONNX Runtime, opened with dlopen from the path in the backend config: the API table, the one OrtEnv,
// RAII owners for Ort* objects, and the one conversion of OrtStatus* into a TRITONSERVER_Error*.
#pragma once

#include <memory>
#include <string>

#include "ort_abi.h"
#include "triton_abi.h"

namespace tritonstack {

// Releases any Ort* object through the API table it came from.
struct OrtDeleter {
  const OrtApi* api = nullptr;
  void operator()(OrtStatus* p) const { api->ReleaseStatus(p); }
  void operator()(OrtEnv* p) const { api->ReleaseEnv(p); }
  void operator()(OrtSession* p) const { api->ReleaseSession(p); }
  void operator()(OrtSessionOptions* p) const { api->ReleaseSessionOptions(p); }
  void operator()(OrtValue* p) const { api->ReleaseValue(p); }
  void operator()(OrtMemoryInfo* p) const { api->ReleaseMemoryInfo(p); }
  void operator()(OrtTypeInfo* p) const { api->ReleaseTypeInfo(p); }
  void operator()(OrtTensorTypeAndShapeInfo* p) const { api->ReleaseTensorTypeAndShapeInfo(p); }
};

template <typename T>
using OrtPtr = std::unique_ptr<T, OrtDeleter>;

// Turn an OrtStatus* (nullptr = success) into a Triton error (INVALID_ARG when ORT blames the input),
// prefixing `context`; releases the status.
TRITONSERVER_Error* FromOrt(const OrtApi* api, OrtStatus* status, const std::string& context);

#define TS_RETURN_IF_ORT(API, X, CONTEXT)                                        \
  do {                                                                           \
    OrtStatus* ts_status__ = (X);                                                \
    if (ts_status__ != nullptr) return ::tritonstack::FromOrt((API), ts_status__, (CONTEXT)); \
  } while (false)

class OrtRuntime {
 public:
  // Open `library_path`, check versions and the API table layout, create the environment.
  static TRITONSERVER_Error* Load(const std::string& library_path, std::unique_ptr<OrtRuntime>* out);
  ~OrtRuntime();
  OrtRuntime(const OrtRuntime&) = delete;
  OrtRuntime& operator=(const OrtRuntime&) = delete;

  const OrtApi* api() const { return api_; }
  const OrtEnv* env() const { return env_.get(); }
  const std::string& version() const { return version_; }
  template <typename T>
  OrtPtr<T> Own(T* p) const { return OrtPtr<T>(p, OrtDeleter{api_}); }

 private:
  OrtRuntime() = default;
  TRITONSERVER_Error* CheckLayout() const;
  void* handle_ = nullptr;
  const OrtApi* api_ = nullptr;
  std::string version_;
  OrtPtr<OrtEnv> env_;
};

}  // namespace tritonstack
