#include "model_config.h"

#include <algorithm>

namespace tritonstack {
namespace {

const char kPythonHint[] =
    "; serve it with the Python runner: add parameters { key: \"tritonstack_runner\" value { string_value: "
    "\"python\" } } to its config.pbtxt, or run `tritonstack serve --runner python`";

// A string parameter of the config (`parameters { key: K value { string_value: V } }`), or "".
std::string Parameter(const Json& config, const std::string& key) {
  const Json* parameters = config.Get("parameters");
  const Json* entry = parameters != nullptr ? parameters->Get(key) : nullptr;
  return entry != nullptr ? entry->String("string_value") : "";
}

std::string ParseTensor(const std::string& model, const char* role, const Json& json, TensorSpec* out) {
  out->name = json.String("name");
  std::string type = json.String("data_type");
  std::string where = "model '" + model + "': " + role + " '" + out->name + "'";
  out->type = FindDataType(type);
  if (out->type == nullptr) return where + " has data_type " + type + ", which this backend does not know";
  if (out->type->byte_size == 0) {
    return where + " is " + type + " (BYTES); the native onnxruntime runner takes fixed-size tensors only" +
           kPythonHint;
  }
  if (json.Get("reshape") != nullptr) return where + " uses reshape, which the native runner does not support" +
                                             kPythonHint;
  const Json* dims = json.Get("dims");
  for (const Json& dim : dims != nullptr ? dims->items() : std::vector<Json>()) {
    int64_t value = 0;
    if (!dim.AsInt(&value)) return where + " has a non-integer dimension";
    out->dims.push_back(value);
  }
  return "";
}

using Members = std::vector<std::pair<std::string, Json>>;

std::string ParseTensors(const ModelConfig& model, const Json& config, const char* key, const char* role,
                         std::vector<TensorSpec>* out) {
  const Json* list = config.Get(key);
  if (list == nullptr || list->items().empty()) {
    return "model '" + model.name + "' declares no " + role + "s; list them in config.pbtxt (configs are not "
           "completed from the ONNX file, as Triton's own backend does: tritonstack convert writes complete ones)";
  }
  for (const Json& item : list->items()) {
    out->emplace_back();
    std::string error = ParseTensor(model.name, role, item, &out->back());
    if (!error.empty()) return error;
  }
  return "";
}

// An integer parameter in [0, most]; `out` is left as it is when the parameter is absent.
std::string ParseCount(const Json& config, const char* key, int64_t most, const char* what, int64_t* out) {
  std::string text = Parameter(config, key);
  if (text.empty()) return "";
  Json number;
  std::string ignored;
  int64_t value = -1;
  if (!Json::Parse(text, &number, &ignored) || !number.AsInt(&value) || value < 0 || value > most) {
    return "parameter " + std::string(key) + "='" + text + "' is not " + what + " (0-" + std::to_string(most) + ")";
  }
  *out = value;
  return "";
}

std::string ParseThreads(const Json& config, const char* key, int* out) {
  int64_t value = *out;
  std::string error = ParseCount(config, key, 1024, "a thread count", &value);
  *out = static_cast<int>(value);
  return error;
}

// `max_input_dims` ({"input_ids": [256]}): a request with a larger input is refused alone.
std::string ParseMaxDims(const Json& config, std::vector<TensorSpec>* inputs) {
  std::string text = Parameter(config, "max_input_dims");
  if (text.empty()) return "";
  Json limits;
  std::string error;
  if (!Json::Parse(text, &limits, &error) || limits.kind() != Json::Kind::kObject) {
    return "parameter max_input_dims is not a JSON object of dims lists: " + text;
  }
  for (TensorSpec& spec : *inputs) {
    const Json* dims = limits.Get(spec.name);
    for (const Json& dim : dims != nullptr ? dims->items() : std::vector<Json>()) {
      int64_t value = 0;
      if (!dim.AsInt(&value)) return "parameter max_input_dims has a non-integer limit for '" + spec.name + "'";
      spec.max_dims.push_back(value);
    }
  }
  return "";
}

// `trim_padding`: the named input must be a batched [batch, -1] integer or BOOL mask, and no output may
// have a dynamic dimension (an output that follows the trimmed axis could not be given back its padding).
std::string ParseTrim(const Json& config, ModelConfig* out) {
  std::string mask = Parameter(config, "trim_padding");
  if (mask.empty()) return "";
  std::string error = ParseCount(config, "trim_padding_run_cost", 1 << 20, "a cost in token-rows", &out->trim_run_cost);
  if (!error.empty()) return error;
  std::string where = "parameter trim_padding='" + mask + "'";
  for (size_t i = 0; i < out->inputs.size(); ++i) {
    if (out->inputs[i].name == mask) out->trim_mask = static_cast<int>(i);
  }
  if (out->trim_mask < 0) return where + " names no input of the model; name its attention-mask input";
  const TensorSpec& spec = out->inputs[out->trim_mask];
  const std::string type = spec.type->config_name;
  bool integer = type != "TYPE_FP16" && type != "TYPE_FP32" && type != "TYPE_FP64" && type != "TYPE_BF16";
  if (!out->batched() || spec.dims != std::vector<int64_t>{-1} || !integer) {
    return where + ": the mask must be an integer or BOOL input of dims [-1] in a model with max_batch_size > 0";
  }
  for (const TensorSpec& output : out->outputs) {
    for (int64_t dim : output.dims) {
      if (dim < 0) {
        return where + ": output '" + output.name + "' has a dynamic dimension; trimming needs fixed output dims "
               "(remove the parameter)";
      }
    }
  }
  return "";
}

}  // namespace

GraphOptimizationLevel GraphLevel(int64_t level) {
  if (level == -1) return ORT_ENABLE_BASIC;
  if (level == 1) return ORT_ENABLE_EXTENDED;
  if (level <= -2) return ORT_DISABLE_ALL;
  return ORT_ENABLE_ALL;
}

std::string ParseModelConfig(const Json& config, ModelConfig* out) {
  out->name = config.String("name");
  if (Parameter(config, "tritonstack_runner") == "python") {
    return "model '" + out->name + "' asks for the Python runner (parameter tritonstack_runner=python); "
           "`tritonstack serve` loads it with the Python runner, not with this native backend";
  }
  config.Int("max_batch_size", &out->max_batch_size);
  std::string filename = config.String("default_model_filename");
  if (!filename.empty()) out->model_filename = filename;
  std::string error = ParseTensors(*out, config, "input", "input", &out->inputs);
  if (error.empty()) error = ParseTensors(*out, config, "output", "output", &out->outputs);
  if (error.empty()) error = ParseMaxDims(config, &out->inputs);
  if (error.empty()) error = ParseThreads(config, "intra_op_thread_count", &out->intra_op_threads);
  if (error.empty()) error = ParseThreads(config, "inter_op_thread_count", &out->inter_op_threads);
  if (error.empty()) error = ParseTrim(config, out);
  // Rows are independent where the dynamic batcher merges requests; without it, slicing is opt-in.
  if (config.Get("dynamic_batching") == nullptr) out->max_run_rows = 0;
  if (error.empty()) error = ParseCount(config, "max_run_rows", int64_t(1) << 31, "a row count", &out->max_run_rows);
  if (const Json* warmup = config.Get("model_warmup")) {
    for (const Json& sample : warmup->items()) {
      int64_t count = 0;
      sample.Int("count", &count);
      out->warmup_executions += std::max<int64_t>(count, 1);
      const Json* inputs = sample.Get("inputs");
      for (const auto& [input, spec] : inputs != nullptr ? inputs->members() : Members()) {
        WarmupInput warm{sample.String("name"), input, {}};
        const Json* dims = spec.Get("dims");
        for (const Json& dim : dims != nullptr ? dims->items() : std::vector<Json>()) {
          int64_t value = 0;
          if (dim.AsInt(&value)) warm.dims.push_back(value);
        }
        out->warmup_inputs.push_back(warm);
      }
    }
  }
  const Json* optimization = config.Get("optimization");
  const Json* graph = optimization != nullptr ? optimization->Get("graph") : nullptr;
  int64_t level = 0;
  if (graph != nullptr && graph->Int("level", &level)) out->graph_level = GraphLevel(level);
  if (!error.empty() && error.rfind("model '", 0) != 0) error = "model '" + out->name + "': " + error;
  return error;
}

}  // namespace tritonstack
