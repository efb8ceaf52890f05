// One ONNX Runtime session (one per model instance), checked against config.pbtxt when it is created.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model_config.h"
#include "ort_runtime.h"

namespace tritonstack {

class Session {
 public:
  // Open `path` with the config's thread and graph settings (`intra_op_override` > 0 wins over the config).
  static TRITONSERVER_Error* Create(const OrtRuntime& runtime, const ModelConfig& config, const std::string& path,
                                    int intra_op_override, std::unique_ptr<Session>* out);

  // One Run over `inputs` (in config input order); `outputs` gets one value per config output.
  TRITONSERVER_Error* Run(const std::vector<OrtValue*>& inputs, std::vector<OrtPtr<OrtValue>>* outputs);

  const OrtMemoryInfo* cpu() const { return cpu_.get(); }
  const OrtRuntime& runtime() const { return runtime_; }

 private:
  Session(const OrtRuntime& runtime, const ModelConfig& config) : runtime_(runtime), config_(config) {}
  TRITONSERVER_Error* Check(bool inputs) const;
  TRITONSERVER_Error* CheckOne(bool input, size_t index, const std::vector<TensorSpec>& specs,
                               std::vector<bool>* seen) const;

  const OrtRuntime& runtime_;
  const ModelConfig& config_;
  OrtPtr<OrtSession> session_;
  OrtPtr<OrtMemoryInfo> cpu_;
  std::vector<const char*> input_names_;
  std::vector<const char*> output_names_;
};

}  // namespace tritonstack
