#include "io.h"

#include <cstring>

#include "common.h"

namespace tritonstack {
namespace {

TRITONSERVER_Error* Invalid(const std::string& message) { return Error(TRITONSERVER_ERROR_INVALID_ARG, message); }

// Point `view` at the input's bytes: Triton's own buffer when there is one, else a gathered copy.
TRITONSERVER_Error* ReadBuffers(TRITONBACKEND_Input* input, uint32_t buffer_count, const std::string& name,
                                InputView* view) {
  view->gathered.clear();
  for (uint32_t i = 0; i < buffer_count; ++i) {
    const void* buffer = nullptr;
    uint64_t size = 0;
    TRITONSERVER_MemoryType memory = TRITONSERVER_MEMORY_CPU;
    int64_t memory_id = 0;
    TS_RETURN_IF_ERROR(TRITONBACKEND_InputBuffer(input, i, &buffer, &size, &memory, &memory_id));
    if (memory == TRITONSERVER_MEMORY_GPU) return Invalid("input '" + name + "' is in GPU memory; this backend is CPU-only");
    if (buffer_count == 1) {
      view->data = static_cast<const char*>(buffer);
      return size == view->bytes ? nullptr : Invalid("input '" + name + "' buffer holds " + std::to_string(size) +
                                                     " bytes, not " + std::to_string(view->bytes));
    }
    if (view->gathered.size() + size > view->bytes) {
      return Invalid("input '" + name + "' buffers hold more than its " + std::to_string(view->bytes) + " bytes");
    }
    view->gathered.insert(view->gathered.end(), static_cast<const char*>(buffer),
                          static_cast<const char*>(buffer) + size);
  }
  if (view->gathered.size() != view->bytes) return Invalid("input '" + name + "' buffers are short of its byte size");
  view->data = view->gathered.data();
  return nullptr;
}

TRITONSERVER_Error* ReadInput(const ModelConfig& config, const TensorSpec& spec, Pending* pending, InputView* view) {
  TRITONBACKEND_Input* input = nullptr;
  TS_RETURN_IF_ERROR(TRITONBACKEND_RequestInput(pending->request, spec.name.c_str(), &input));
  TRITONSERVER_DataType type = TRITONSERVER_TYPE_INVALID;
  const int64_t* shape = nullptr;
  uint32_t dims = 0, buffers = 0;
  uint64_t bytes = 0;
  TS_RETURN_IF_ERROR(TRITONBACKEND_InputProperties(input, nullptr, &type, &shape, &dims, &bytes, &buffers));
  std::string where = "input '" + spec.name + "'";
  if (type != spec.type->triton) return Invalid(where + " has the wrong data type; the model expects " + spec.type->config_name);
  size_t rank = spec.dims.size() + (config.batched() ? 1 : 0);
  if (dims != rank) return Invalid(where + " has shape " + ShapeString(shape, dims) + "; the model expects rank " + std::to_string(rank));
  uint64_t needed = 0;
  if (!CheckedByteSize(shape, dims, spec.type->byte_size, &needed)) {
    return Invalid(where + " has shape " + ShapeString(shape, dims) + ", whose byte size overflows (or a dimension is negative)");
  }
  if (needed != bytes) {
    return Invalid(where + " has shape " + ShapeString(shape, dims) + " of " + spec.type->config_name + " = " +
                   std::to_string(needed) + " bytes, but the request carries " + std::to_string(bytes) + " bytes");
  }
  size_t first = config.batched() ? 1 : 0;
  for (size_t d = 0; d < spec.max_dims.size() && first + d < dims; ++d) {
    if (shape[first + d] > spec.max_dims[d]) {
      return Invalid(where + " has shape " + ShapeString(shape, dims) + "; this model accepts at most " +
                     ShapeString(spec.max_dims) + " (without the batch axis): shorten the input");
    }
  }
  view->shape.assign(shape, shape + dims);
  view->bytes = bytes;
  return ReadBuffers(input, buffers, spec.name, view);
}

}  // namespace

TRITONSERVER_Error* ReadInputs(const ModelConfig& config, Pending* pending) {
  pending->inputs.resize(config.inputs.size());
  for (size_t i = 0; i < config.inputs.size(); ++i) {
    InputView* view = &pending->inputs[i];
    TS_RETURN_IF_ERROR(ReadInput(config, config.inputs[i], pending, view));
    if (!config.batched()) continue;
    if (i == 0) pending->rows = view->shape[0];
    if (view->shape[0] != pending->rows) {
      return Invalid("input '" + config.inputs[i].name + "' has batch size " + std::to_string(view->shape[0]) +
                     " but input '" + config.inputs[0].name + "' has " + std::to_string(pending->rows));
    }
  }
  return nullptr;
}

TRITONSERVER_Error* DescribeOutputs(const OrtRuntime& runtime, const ModelConfig& config, int64_t rows,
                                    const std::vector<OrtPtr<OrtValue>>& values, std::vector<OutputInfo>* out) {
  const OrtApi* api = runtime.api();
  out->assign(values.size(), OutputInfo());
  for (size_t i = 0; i < values.size(); ++i) {
    const TensorSpec& spec = config.outputs[i];
    OrtTensorTypeAndShapeInfo* raw = nullptr;
    TS_RETURN_IF_ORT(api, api->GetTensorTypeAndShape(values[i].get(), &raw), "output '" + spec.name + "'");
    OrtPtr<OrtTensorTypeAndShapeInfo> info = runtime.Own(raw);
    ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
    size_t rank = 0;
    TS_RETURN_IF_ORT(api, api->GetTensorElementType(info.get(), &type), "output type");
    TS_RETURN_IF_ORT(api, api->GetDimensionsCount(info.get(), &rank), "output rank");
    OutputInfo& o = (*out)[i];
    o.shape.resize(rank);
    TS_RETURN_IF_ORT(api, api->GetDimensions(info.get(), o.shape.data(), rank), "output shape");
    if (type != spec.type->onnx) {
      return Error(TRITONSERVER_ERROR_INTERNAL, "output '" + spec.name + "' came out " + OnnxTypeName(type) +
                   ", not " + spec.type->config_name);
    }
    if (!CheckedByteSize(o.shape.data(), rank, spec.type->byte_size, &o.bytes)) {
      return Error(TRITONSERVER_ERROR_INTERNAL, "output '" + spec.name + "' has an invalid shape");
    }
    if (config.batched() && (rank == 0 || o.shape[0] != rows)) {
      return Error(TRITONSERVER_ERROR_INTERNAL, "output '" + spec.name + "' has shape " + ShapeString(o.shape) +
                   " for a batch of " + std::to_string(rows) + " rows");
    }
    o.row_bytes = config.batched() && rows > 0 ? o.bytes / static_cast<uint64_t>(rows) : o.bytes;
    void* data = nullptr;
    TS_RETURN_IF_ORT(api, api->GetTensorMutableData(values[i].get(), &data), "output data");
    o.data = static_cast<const char*>(data);
  }
  return nullptr;
}

namespace {

TRITONSERVER_Error* WriteOutput(TRITONBACKEND_Response* response, const TensorSpec& spec, const OutputInfo& info,
                                bool batched, int64_t row_offset, int64_t rows) {
  std::vector<int64_t> shape = info.shape;
  uint64_t offset = 0, bytes = info.bytes;
  if (batched) {
    shape[0] = rows;
    offset = info.row_bytes * static_cast<uint64_t>(row_offset);
    bytes = info.row_bytes * static_cast<uint64_t>(rows);
  }
  TRITONBACKEND_Output* output = nullptr;
  TS_RETURN_IF_ERROR(TRITONBACKEND_ResponseOutput(response, &output, spec.name.c_str(), spec.type->triton,
                                                  shape.data(), static_cast<uint32_t>(shape.size())));
  void* buffer = nullptr;
  TRITONSERVER_MemoryType memory = TRITONSERVER_MEMORY_CPU;
  int64_t memory_id = 0;
  TS_RETURN_IF_ERROR(TRITONBACKEND_OutputBuffer(output, &buffer, bytes, &memory, &memory_id));
  if (memory == TRITONSERVER_MEMORY_GPU) return Error(TRITONSERVER_ERROR_INTERNAL, "Triton gave a GPU output buffer");
  if (bytes > 0) std::memcpy(buffer, info.data + offset, bytes);
  return nullptr;
}

TRITONSERVER_Error* WriteOutputs(TRITONBACKEND_Response* response, const ModelConfig& config,
                                 const std::vector<OutputInfo>& outputs, int64_t row_offset, Pending* pending) {
  uint32_t count = 0;
  TS_RETURN_IF_ERROR(TRITONBACKEND_RequestOutputCount(pending->request, &count));
  for (uint32_t r = 0; r < count; ++r) {
    const char* name = nullptr;
    TS_RETURN_IF_ERROR(TRITONBACKEND_RequestOutputName(pending->request, r, &name));
    size_t i = 0;
    while (i < config.outputs.size() && config.outputs[i].name != name) ++i;
    if (i == config.outputs.size()) return Invalid(std::string("output '") + name + "' is not in the model config");
    TS_RETURN_IF_ERROR(WriteOutput(response, config.outputs[i], outputs[i], config.batched(), row_offset,
                                   pending->rows));
  }
  return nullptr;
}

}  // namespace

TRITONSERVER_Error* SendOutputs(const ModelConfig& config, const std::vector<OutputInfo>& outputs,
                                int64_t row_offset, Pending* pending) {
  TRITONBACKEND_Response* response = nullptr;
  TS_RETURN_IF_ERROR(TRITONBACKEND_ResponseNew(&response, pending->request));
  TRITONSERVER_Error* err = WriteOutputs(response, config, outputs, row_offset, pending);
  LogIfError(TRITONBACKEND_ResponseSend(response, kTritonResponseCompleteFinal, err), "sending a response");
  return err;
}

void SendError(Pending* pending, TRITONSERVER_Error* error) {
  TRITONBACKEND_Response* response = nullptr;
  TRITONSERVER_Error* err = TRITONBACKEND_ResponseNew(&response, pending->request);
  if (err != nullptr) return LogIfError(err, "creating an error response");
  LogIfError(TRITONBACKEND_ResponseSend(response, kTritonResponseCompleteFinal, error), "sending an error response");
}

}  // namespace tritonstack
