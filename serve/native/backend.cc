// The TRITONBACKEND entry points of the `onnxruntime` backend (libtriton_onnxruntime.so).
//
// Backend: checks Triton's backend API version, opens ONNX Runtime from `ort-library` in the backend config
// (--backend-config=onnxruntime,ort-library=<path>[,ort-threads=N][,drift-gauges=0]). Model: reads and checks
// config.pbtxt. Instance: one ORT session and one Executor, plus a drift monitor publishing the
// tritonstack_drift_* gauges when the version folder holds drift_reference.json (unless drift-gauges=0).
// No C++ exception crosses this C ABI.
#include <sys/stat.h>

#include <exception>
#include <memory>
#include <string>

#include "common.h"
#include "drift_monitor.h"
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
  bool drift_gauges = true;  // publish the drift gauges of models that carry a drift reference
  DriftFamilies families;    // declared last: deleted first, after every model's metrics
};

struct ModelState {
  ModelConfig config;
  std::string path;  // <repository>/<version>/<default_model_filename>
  std::string version_dir;
  uint64_t version = 0;
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

TRITONSERVER_Error* ReadBackendConfig(TRITONBACKEND_Backend* backend, std::string* library, int* threads,
                                      bool* drift_gauges) {
  TRITONSERVER_Message* message = nullptr;
  TS_RETURN_IF_ERROR(TRITONBACKEND_BackendConfig(backend, &message));  // owned by Triton
  Json config;
  TS_RETURN_IF_ERROR(MessageJson(message, &config));
  const Json* cmdline = config.Get("cmdline");
  if (cmdline == nullptr) return nullptr;
  *library = cmdline->String("ort-library");
  *drift_gauges = cmdline->String("drift-gauges", "1") != "0";
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
  TS_RETURN_IF_ERROR(ReadBackendConfig(backend, &library, &state->ort_threads, &state->drift_gauges));
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
  state->version = version;
  state->version_dir = std::string(location) + "/" + std::to_string(version);
  state->path = state->version_dir + "/" + state->config.model_filename;
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

// The index of the monitored tensor among the config's inputs (or outputs), or why it cannot be monitored.
std::string DriftTensor(const ModelConfig& config, const DriftReference& reference, size_t* index,
                        const DataType** type) {
  const std::vector<TensorSpec>& tensors = reference.output ? config.outputs : config.inputs;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].name != reference.tensor) continue;
    *index = i, *type = tensors[i].type;
    return tensors[i].type->byte_size == 0 ? "tensor '" + reference.tensor + "' holds strings" : "";
  }
  return std::string("the model has no ") + (reference.output ? "output" : "input") + " '" + reference.tensor + "'";
}

// Attach a drift monitor when the version folder holds drift_reference.json. A bad reference is logged and
// skipped, and so is a metrics API failure: the model still serves.
TRITONSERVER_Error* AttachDrift(ModelState* state, TRITONBACKEND_ModelInstance* instance, Executor* executor) {
  std::string path = state->version_dir + "/drift_reference.json";
  struct stat info;
  if (!state->backend->drift_gauges || stat(path.c_str(), &info) != 0) return nullptr;
  std::unique_ptr<DriftReference> reference(new DriftReference());
  std::string problem = LoadDriftReference(path, reference.get());
  size_t index = 0;
  const DataType* type = nullptr;
  if (problem.empty()) problem = DriftTensor(state->config, *reference, &index, &type);
  if (!problem.empty()) {
    TS_LOG(TRITONSERVER_LOG_WARN, "model '" + state->config.name +
                                      "': drift monitoring off: cannot read drift_reference.json: " + problem);
    return nullptr;
  }
  const char* instance_name = nullptr;
  TS_RETURN_IF_ERROR(TRITONBACKEND_ModelInstanceName(instance, &instance_name));
  std::vector<std::pair<std::string, std::string>> labels = {
      {"model", state->config.name}, {"version", std::to_string(state->version)}, {"model_instance", instance_name}};
  std::unique_ptr<DriftMonitor> monitor;
  TRITONSERVER_Error* err = DriftMonitor::Create(std::move(reference), &state->backend->families, labels, type, &monitor);
  if (err != nullptr) {  // e.g. the metrics API refused: serve without the gauges
    LogIfError(err, ("model '" + state->config.name + "': drift monitoring off: metrics").c_str());
    return nullptr;
  }
  executor->SetDrift(std::move(monitor), index);
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
  TS_RETURN_IF_ERROR(AttachDrift(state, instance, executor.get()));
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
