// Tensor I/O between Triton requests/responses and ONNX Runtime values: read and validate one request's
// inputs, describe a Run's outputs, and write one request's slice of them into its response.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model_config.h"
#include "ort_runtime.h"

namespace tritonstack {

struct InputView {
  std::vector<int64_t> shape;
  const char* data = nullptr;
  uint64_t bytes = 0;
  std::vector<char> gathered;  // a copy, when Triton hands the input over in several buffers
};

// One request of a batch, from validation to its one response.
struct Pending {
  TRITONBACKEND_Request* request = nullptr;
  std::vector<InputView> inputs;  // config input order
  int64_t rows = 1;               // batch dimension (1 for a non-batched model)
  TRITONSERVER_Error* error = nullptr;  // owned; set when this request failed
  uint64_t compute_start_ns = 0;
  uint64_t compute_end_ns = 0;
  uint64_t exec_end_ns = 0;
};

// A Run output: its shape and where its bytes are.
struct OutputInfo {
  std::vector<int64_t> shape;
  const char* data = nullptr;
  uint64_t bytes = 0;
  uint64_t row_bytes = 0;  // bytes per batch row (batched models)
};

// Validate `pending->request` against the config (dtype, rank, shape x element size == byte size, with
// overflow-safe arithmetic, one batch size across inputs) and point at its data. INVALID_ARG on a bad input.
TRITONSERVER_Error* ReadInputs(const ModelConfig& config, Pending* pending);

// Shapes and data of a Run's outputs; checks element types and, for batched models, `rows` rows.
TRITONSERVER_Error* DescribeOutputs(const OrtRuntime& runtime, const ModelConfig& config, int64_t rows,
                                    const std::vector<OrtPtr<OrtValue>>& values, std::vector<OutputInfo>* out);

// Send `pending` its rows [row_offset, row_offset + rows) of every output it asked for. On failure the
// request still gets a response (carrying the error), and the error is returned to the caller, who owns it.
TRITONSERVER_Error* SendOutputs(const ModelConfig& config, const std::vector<OutputInfo>& outputs,
                                int64_t row_offset, Pending* pending);

// Send `pending` a response carrying `error` (not taken over).
void SendError(Pending* pending, TRITONSERVER_Error* error);

}  // namespace tritonstack
