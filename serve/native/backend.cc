// The TRITONBACKEND entry points of the `onnxruntime` backend (libtriton_onnxruntime.so).
//
// Backend: checks Triton's backend API version, opens ONNX Runtime from `ort-library` in the backend config
// (--backend-config=onnxruntime,ort-library=<path>[,ort-threads=N]). Model: reads and checks config.pbtxt.
// Instance: one ORT session and one Executor. No C++ exception crosses this C ABI.
#include <sys/stat.h>

#include <exception>
#include <memory>
#include <string>

#include "common.h"
#include "executor.h"
#include "json.h"
#include "model_config.h"
#include "ort_runtime.h"
#include "session.h"
#include "versions.h"

namespace tritonstack {
namespace {

struct BackendState {
  std::unique_ptr<OrtRuntime> runtime;
  int ort_threads = 0;  // > 0: intra-op threads for every session (tritonstack serve --ort-threads)
};

struct ModelState {
  ModelConfig config;
  std::string path;  // <repository>/<version>/<default_model_filename>
  BackendState* backend = nullptr;
};

// Serialize a Triton message and parse it as JSON; the message stays the caller's.
TRITONSERVER_Error* MessageJson(TRITONSERVER_Message* message, Json* out) {
  const char* base = nullptr;
  size_t size = 0;
  TS_RETURN_IF_ERROR(TRITONSERVER_MessageSerializeToJson(message, &base, &size));
  std::string error;
  if (!Json::Parse(std::string(base, size), out, &error)) return Error(TRITONSERVER_ERROR_INTERNAL, error);
  return nullptr;
}

TRITONSERVER_Error* ReadBackendConfig(TRITONBACKEND_Backend* backend, std::string* library, int* threads) {
  TRITONSERVER_Message* message = nullptr;
  TS_RETURN_IF_ERROR(TRITONBACKEND_BackendConfig(backend, &message));  // owned by Triton
  Json config;
  TS_RETURN_IF_ERROR(MessageJson(message, &config));
  const Json* cmdline = config.Get("cmdline");
  if (cmdline == nullptr) return nullptr;
  *library = cmdline->String("ort-library");
  std::string text = cmdline->String("ort-threads");
  int64_t value = 0;
  Json number;
  std::string ignored;
  if (!text.empty() && (!Json::Parse(text, &number, &ignored) || !number.AsInt(&value) || value < 0 || value > 1024)) {
    return Error(TRITONSERVER_ERROR_INVALID_ARG, "backend config ort-threads='" + text + "' is not a thread count (0-1024)");
  }
  *threads = static_cast<int>(value);
  return nullptr;
}

TRITONSERVER_Error* Initialize(TRITONBACKEND_Backend* backend) {
  uint32_t major = 0, minor = 0;
  TS_RETURN_IF_ERROR(TRITONBACKEND_ApiVersion(&major, &minor));
  std::string refusal = CheckTritonApi(major, minor);
  if (!refusal.empty()) return Error(TRITONSERVER_ERROR_UNSUPPORTED, refusal);
  std::unique_ptr<BackendState> state(new BackendState());
  std::string library;
  TS_RETURN_IF_ERROR(ReadBackendConfig(backend, &library, &state->ort_threads));
  TS_RETURN_IF_ERROR(OrtRuntime::Load(library, &state->runtime));
  TS_LOG(TRITONSERVER_LOG_INFO, "tritonstack native onnxruntime backend: ONNX Runtime " + state->runtime->version() +
                                    " from " + library + ", Triton backend API " + std::to_string(major) + "." +
                                    std::to_string(minor));
  TS_RETURN_IF_ERROR(TRITONBACKEND_BackendSetState(backend, state.get()));
  state.release();
  return nullptr;
}

TRITONSERVER_Error* ModelInitialize(TRITONBACKEND_Model* model) {
  std::unique_ptr<ModelState> state(new ModelState());
  TRITONSERVER_Message* message = nullptr;
  TS_RETURN_IF_ERROR(TRITONBACKEND_ModelConfig(model, 1, &message));
  Json config;
  TRITONSERVER_Error* err = MessageJson(message, &config);
  LogIfError(TRITONSERVER_MessageDelete(message), "deleting the model config message");
  TS_RETURN_IF_ERROR(err);
  std::string refusal = ParseModelConfig(config, &state->config);
  if (!refusal.empty()) return Error(TRITONSERVER_ERROR_INVALID_ARG, refusal);
  TRITONBACKEND_ArtifactType artifact = TRITONBACKEND_ARTIFACT_FILESYSTEM;
  const char* location = nullptr;
  uint64_t version = 0;
  TS_RETURN_IF_ERROR(TRITONBACKEND_ModelRepository(model, &artifact, &location));
  TS_RETURN_IF_ERROR(TRITONBACKEND_ModelVersion(model, &version));
  state->path = std::string(location) + "/" + std::to_string(version) + "/" + state->config.model_filename;
  struct stat info;
  if (stat(state->path.c_str(), &info) != 0) {
    return Error(TRITONSERVER_ERROR_NOT_FOUND, "model '" + state->config.name + "': " + state->path +
                 " does not exist; put the ONNX file there or set default_model_filename");
  }
  TRITONBACKEND_Backend* backend = nullptr;
  void* backend_state = nullptr;
  TS_RETURN_IF_ERROR(TRITONBACKEND_ModelBackend(model, &backend));
  TS_RETURN_IF_ERROR(TRITONBACKEND_BackendState(backend, &backend_state));
  state->backend = static_cast<BackendState*>(backend_state);
  TS_RETURN_IF_ERROR(TRITONBACKEND_ModelSetState(model, state.get()));
  state.release();
  return nullptr;
}

TRITONSERVER_Error* InstanceInitialize(TRITONBACKEND_ModelInstance* instance) {
  TRITONBACKEND_Model* model = nullptr;
  void* model_state = nullptr;
  TS_RETURN_IF_ERROR(TRITONBACKEND_ModelInstanceModel(instance, &model));
  TS_RETURN_IF_ERROR(TRITONBACKEND_ModelState(model, &model_state));
  auto* state = static_cast<ModelState*>(model_state);
  std::unique_ptr<Session> session;
  TS_RETURN_IF_ERROR(Session::Create(*state->backend->runtime, state->config, state->path,
                                     state->backend->ort_threads, &session));
  std::unique_ptr<Executor> executor(new Executor(state->config, std::move(session), instance));
  TS_RETURN_IF_ERROR(TRITONBACKEND_ModelInstanceSetState(instance, executor.get()));
  executor.release();
  return nullptr;
}

// Run `body`, turning any C++ exception into a Triton error.
template <typename Body>
TRITONSERVER_Error* Guard(const char* where, Body body) {
  try {
    return body();
  } catch (const std::exception& exc) {
    return Error(TRITONSERVER_ERROR_INTERNAL, std::string(where) + ": " + exc.what());
  } catch (...) {
    return Error(TRITONSERVER_ERROR_INTERNAL, std::string(where) + ": unknown C++ exception");
  }
}

}  // namespace
}  // namespace tritonstack

using tritonstack::Guard;

TRITONSTACK_EXPORT TRITONSERVER_Error* TRITONBACKEND_Initialize(TRITONBACKEND_Backend* backend) {
  return Guard("TRITONBACKEND_Initialize", [&] { return tritonstack::Initialize(backend); });
}

TRITONSTACK_EXPORT TRITONSERVER_Error* TRITONBACKEND_Finalize(TRITONBACKEND_Backend* backend) {
  void* state = nullptr;
  TS_RETURN_IF_ERROR(TRITONBACKEND_BackendState(backend, &state));
  delete static_cast<tritonstack::BackendState*>(state);
  return nullptr;
}

TRITONSTACK_EXPORT TRITONSERVER_Error* TRITONBACKEND_ModelInitialize(TRITONBACKEND_Model* model) {
  return Guard("TRITONBACKEND_ModelInitialize", [&] { return tritonstack::ModelInitialize(model); });
}

TRITONSTACK_EXPORT TRITONSERVER_Error* TRITONBACKEND_ModelFinalize(TRITONBACKEND_Model* model) {
  void* state = nullptr;
  TS_RETURN_IF_ERROR(TRITONBACKEND_ModelState(model, &state));
  delete static_cast<tritonstack::ModelState*>(state);
  return nullptr;
}

TRITONSTACK_EXPORT TRITONSERVER_Error* TRITONBACKEND_ModelInstanceInitialize(TRITONBACKEND_ModelInstance* instance) {
  return Guard("TRITONBACKEND_ModelInstanceInitialize", [&] { return tritonstack::InstanceInitialize(instance); });
}

TRITONSTACK_EXPORT TRITONSERVER_Error* TRITONBACKEND_ModelInstanceFinalize(TRITONBACKEND_ModelInstance* instance) {
  void* state = nullptr;
  TS_RETURN_IF_ERROR(TRITONBACKEND_ModelInstanceState(instance, &state));
  delete static_cast<tritonstack::Executor*>(state);
  return nullptr;
}

// Always takes over the requests (returns nullptr): every request is responded to and released, even
// when it fails; an exception here (out of memory) is logged.
TRITONSTACK_EXPORT TRITONSERVER_Error* TRITONBACKEND_ModelInstanceExecute(TRITONBACKEND_ModelInstance* instance,
                                                                          TRITONBACKEND_Request** requests,
                                                                          const uint32_t request_count) {
  TRITONSERVER_Error* err = Guard("TRITONBACKEND_ModelInstanceExecute", [&]() -> TRITONSERVER_Error* {
    void* state = nullptr;
    TS_RETURN_IF_ERROR(TRITONBACKEND_ModelInstanceState(instance, &state));
    static_cast<tritonstack::Executor*>(state)->Execute(requests, request_count);
    return nullptr;
  });
  tritonstack::LogIfError(err, "execute");
  return nullptr;
}
