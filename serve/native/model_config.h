// What the backend needs from a model's config.pbtxt (as Triton's JSON), checked once at load.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "json.h"
#include "types.h"

namespace tritonstack {

struct TensorSpec {
  std::string name;
  const DataType* type = nullptr;
  std::vector<int64_t> dims;  // without the batch dimension; -1 = dynamic
  std::vector<int64_t> max_dims;  // parameter max_input_dims: largest accepted dims (no batch axis)
};

// One input of one model_warmup sample: the dims Triton will send it (without the batch dimension).
struct WarmupInput {
  std::string sample;
  std::string input;
  std::vector<int64_t> dims;
};

struct ModelConfig {
  std::string name;
  int64_t max_batch_size = 0;
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  std::string model_filename = "model.onnx";
  int intra_op_threads = 1;
  int inter_op_threads = 1;
  GraphOptimizationLevel graph_level = ORT_ENABLE_ALL;
  // Parameter trim_padding (a 2-D integer mask input, e.g. "attention_mask"): before each Run, the batch's
  // axis 1 is cut after the last column where any row's mask is non-zero, in every input of the mask's
  // shape. -1: off.
  int trim_mask = -1;
  // Parameter trim_padding_run_cost (token-rows, default 16): a batch's rows run in groups of similar used
  // length when the padding saved exceeds this cost per extra run. 0: one run per batch.
  int64_t trim_run_cost = 16;
  // Parameter max_run_rows (default 1024 with dynamic batching, else 0; 0: off): a batch of more rows runs in
  // consecutive slices of this many rows, for models whose outputs have fixed dims.
  int64_t max_run_rows = 1024;
  // Executions of each instance that are Triton's warm-up (model_warmup: one per sample and iteration), run
  // before the instance takes traffic: kept out of the drift window.
  int64_t warmup_executions = 0;
  std::vector<WarmupInput> warmup_inputs;
  bool batched() const { return max_batch_size > 0; }
  bool fixed_outputs() const {
    for (const TensorSpec& output : outputs) {
      for (int64_t dim : output.dims) {
        if (dim < 0) return false;
      }
    }
    return true;
  }
};

// Fill `out` from Triton's model configuration JSON. Returns "" or a load-time refusal that names the model.
std::string ParseModelConfig(const Json& config, ModelConfig* out);

// Triton's ORT backend mapping of `optimization { graph { level } }`: -1 basic, 1 extended, <= -2 none,
// anything else all.
GraphOptimizationLevel GraphLevel(int64_t level);

}  // namespace tritonstack
