// Tensor data types (config.pbtxt names, Triton enum, ONNX enum, element size) and overflow-safe sizes.
#pragma once

#include <cstdint>
#include <string>

#include "ort_abi.h"
#include "triton_abi.h"

namespace tritonstack {

struct DataType {
  const char* config_name;  // "TYPE_FP32"
  TRITONSERVER_DataType triton;
  ONNXTensorElementDataType onnx;
  uint64_t byte_size;  // 0 for variable-size (strings)
};

// The type named in config.pbtxt (e.g. "TYPE_FP32"), or nullptr when unknown.
const DataType* FindDataType(const std::string& config_name);

// Readable name of an ONNX element type ("FLOAT16").
const char* OnnxTypeName(ONNXTensorElementDataType type);

// Bytes of a tensor of `shape` x `element_size`: false when a dimension is negative or the product overflows.
bool CheckedByteSize(const int64_t* shape, size_t dims, uint64_t element_size, uint64_t* bytes);

}  // namespace tritonstack
