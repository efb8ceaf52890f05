#include "types.h"

namespace tritonstack {
namespace {

const DataType kTypes[] = {
    {"TYPE_BOOL", TRITONSERVER_TYPE_BOOL, ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL, 1},
    {"TYPE_UINT8", TRITONSERVER_TYPE_UINT8, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, 1},
    {"TYPE_UINT16", TRITONSERVER_TYPE_UINT16, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16, 2},
    {"TYPE_UINT32", TRITONSERVER_TYPE_UINT32, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32, 4},
    {"TYPE_UINT64", TRITONSERVER_TYPE_UINT64, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64, 8},
    {"TYPE_INT8", TRITONSERVER_TYPE_INT8, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8, 1},
    {"TYPE_INT16", TRITONSERVER_TYPE_INT16, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16, 2},
    {"TYPE_INT32", TRITONSERVER_TYPE_INT32, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, 4},
    {"TYPE_INT64", TRITONSERVER_TYPE_INT64, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, 8},
    {"TYPE_FP16", TRITONSERVER_TYPE_FP16, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16, 2},
    {"TYPE_FP32", TRITONSERVER_TYPE_FP32, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, 4},
    {"TYPE_FP64", TRITONSERVER_TYPE_FP64, ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE, 8},
    {"TYPE_BF16", TRITONSERVER_TYPE_BF16, ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16, 2},
    {"TYPE_STRING", TRITONSERVER_TYPE_BYTES, ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING, 0},
};

const char* const kOnnxNames[] = {"UNDEFINED", "FLOAT", "UINT8",  "INT8",   "UINT16",    "INT16",
                                  "INT32",     "INT64", "STRING", "BOOL",   "FLOAT16",   "DOUBLE",
                                  "UINT32",    "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"};

}  // namespace

const DataType* FindDataType(const std::string& config_name) {
  for (const DataType& type : kTypes) {
    if (config_name == type.config_name) return &type;
  }
  return nullptr;
}

const char* OnnxTypeName(ONNXTensorElementDataType type) {
  size_t index = static_cast<size_t>(type);
  return index < sizeof(kOnnxNames) / sizeof(kOnnxNames[0]) ? kOnnxNames[index] : "UNKNOWN";
}

bool CheckedByteSize(const int64_t* shape, size_t dims, uint64_t element_size, uint64_t* bytes) {
  uint64_t total = element_size;
  for (size_t i = 0; i < dims; ++i) {
    if (shape[i] < 0) return false;
    if (__builtin_mul_overflow(total, static_cast<uint64_t>(shape[i]), &total)) return false;
  }
  *bytes = total;
  return true;
}

}  // namespace tritonstack
