// Our declarations of the leading part of ONNX Runtime's C API (onnxruntime_c_api.h), written from its
// documentation. `OrtApi` is a struct of function pointers whose order ORT fixes forever and only appends
// to, so declaring it up to the last member we call is enough. Members we do not call are `Slot`s that
// keep the offsets right; the static_assert below pins the count, and a CreateStatus -> GetErrorMessage
// round trip at load time checks that the library agrees (ort_runtime.cc).
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {

struct OrtStatus;
struct OrtEnv;
struct OrtSession;
struct OrtSessionOptions;
struct OrtValue;
struct OrtMemoryInfo;
struct OrtRunOptions;
struct OrtTypeInfo;
struct OrtTensorTypeAndShapeInfo;
struct OrtAllocator;

// The C API version we ask the library for (ORT 1.17, Feb 2024); every function below exists since API 1.
constexpr uint32_t kOrtApiVersion = 17;

enum OrtErrorCode {
  ORT_OK,
  ORT_FAIL,
  ORT_INVALID_ARGUMENT,
  ORT_NO_SUCHFILE,
  ORT_NO_MODEL,
  ORT_ENGINE_ERROR,
  ORT_RUNTIME_EXCEPTION,
  ORT_INVALID_PROTOBUF,
  ORT_MODEL_LOADED,
  ORT_NOT_IMPLEMENTED,
  ORT_INVALID_GRAPH,
  ORT_EP_FAIL,
};

enum OrtLoggingLevel {
  ORT_LOGGING_LEVEL_VERBOSE,
  ORT_LOGGING_LEVEL_INFO,
  ORT_LOGGING_LEVEL_WARNING,
  ORT_LOGGING_LEVEL_ERROR,
  ORT_LOGGING_LEVEL_FATAL,
};

enum ONNXTensorElementDataType {
  ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED,
  ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
  ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8,
  ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8,
  ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16,
  ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16,
  ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32,
  ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64,
  ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING,
  ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL,
  ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16,
  ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE,
  ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32,
  ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64,
  ONNX_TENSOR_ELEMENT_DATA_TYPE_COMPLEX64,
  ONNX_TENSOR_ELEMENT_DATA_TYPE_COMPLEX128,
  ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16,
};

enum GraphOptimizationLevel {
  ORT_DISABLE_ALL = 0,
  ORT_ENABLE_BASIC = 1,
  ORT_ENABLE_EXTENDED = 2,
  ORT_ENABLE_ALL = 99,
};

enum OrtAllocatorType { OrtInvalidAllocator = -1, OrtDeviceAllocator = 0, OrtArenaAllocator = 1 };
enum OrtMemType { OrtMemTypeCPUInput = -2, OrtMemTypeCPUOutput = -1, OrtMemTypeDefault = 0 };

using Slot = void*;  // an OrtApi member this backend never calls

struct OrtApi {
  OrtStatus* (*CreateStatus)(OrtErrorCode code, const char* msg);                                // 0
  OrtErrorCode (*GetErrorCode)(const OrtStatus* status);                                         // 1
  const char* (*GetErrorMessage)(const OrtStatus* status);                                       // 2
  OrtStatus* (*CreateEnv)(OrtLoggingLevel level, const char* logid, OrtEnv** out);               // 3
  Slot CreateEnvWithCustomLogger, EnableTelemetryEvents, DisableTelemetryEvents;                 // 4-6
  OrtStatus* (*CreateSession)(const OrtEnv* env, const char* model_path, const OrtSessionOptions* options,
                              OrtSession** out);                                                 // 7
  Slot CreateSessionFromArray;                                                                   // 8
  OrtStatus* (*Run)(OrtSession* session, const OrtRunOptions* run_options, const char* const* input_names,
                    const OrtValue* const* inputs, size_t input_len, const char* const* output_names,
                    size_t output_names_len, OrtValue** outputs);                                // 9
  OrtStatus* (*CreateSessionOptions)(OrtSessionOptions** options);                               // 10
  Slot SetOptimizedModelFilePath, CloneSessionOptions, SetSessionExecutionMode, EnableProfiling,
      DisableProfiling, EnableMemPattern, DisableMemPattern, EnableCpuMemArena, DisableCpuMemArena,
      SetSessionLogId, SetSessionLogVerbosityLevel, SetSessionLogSeverityLevel;                  // 11-22
  OrtStatus* (*SetSessionGraphOptimizationLevel)(OrtSessionOptions* options, GraphOptimizationLevel level);
  OrtStatus* (*SetIntraOpNumThreads)(OrtSessionOptions* options, int threads);                   // 24
  OrtStatus* (*SetInterOpNumThreads)(OrtSessionOptions* options, int threads);                   // 25
  Slot CreateCustomOpDomain, CustomOpDomain_Add, AddCustomOpDomain, RegisterCustomOpsLibrary;    // 26-29
  OrtStatus* (*SessionGetInputCount)(const OrtSession* session, size_t* out);                    // 30
  OrtStatus* (*SessionGetOutputCount)(const OrtSession* session, size_t* out);                   // 31
  Slot SessionGetOverridableInitializerCount;                                                    // 32
  OrtStatus* (*SessionGetInputTypeInfo)(const OrtSession* session, size_t index, OrtTypeInfo** out);
  OrtStatus* (*SessionGetOutputTypeInfo)(const OrtSession* session, size_t index, OrtTypeInfo** out);
  Slot SessionGetOverridableInitializerTypeInfo;                                                 // 35
  OrtStatus* (*SessionGetInputName)(const OrtSession* session, size_t index, OrtAllocator* allocator,
                                    char** value);                                               // 36
  OrtStatus* (*SessionGetOutputName)(const OrtSession* session, size_t index, OrtAllocator* allocator,
                                     char** value);                                              // 37
  Slot SessionGetOverridableInitializerName, CreateRunOptions, RunOptionsSetRunLogVerbosityLevel,
      RunOptionsSetRunLogSeverityLevel, RunOptionsSetRunTag, RunOptionsGetRunLogVerbosityLevel,
      RunOptionsGetRunLogSeverityLevel, RunOptionsGetRunTag, RunOptionsSetTerminate,
      RunOptionsUnsetTerminate, CreateTensorAsOrtValue;                                          // 38-48
  OrtStatus* (*CreateTensorWithDataAsOrtValue)(const OrtMemoryInfo* info, void* data, size_t data_len,
                                               const int64_t* shape, size_t shape_len,
                                               ONNXTensorElementDataType type, OrtValue** out);  // 49
  Slot IsTensor;                                                                                 // 50
  OrtStatus* (*GetTensorMutableData)(OrtValue* value, void** out);                               // 51
  Slot FillStringTensor, GetStringTensorDataLength, GetStringTensorContent;                      // 52-54
  OrtStatus* (*CastTypeInfoToTensorInfo)(const OrtTypeInfo* type_info,
                                         const OrtTensorTypeAndShapeInfo** out);                 // 55
  Slot GetOnnxTypeFromTypeInfo, CreateTensorTypeAndShapeInfo, SetTensorElementType, SetDimensions;  // 56-59
  OrtStatus* (*GetTensorElementType)(const OrtTensorTypeAndShapeInfo* info,
                                     ONNXTensorElementDataType* out);                            // 60
  OrtStatus* (*GetDimensionsCount)(const OrtTensorTypeAndShapeInfo* info, size_t* out);          // 61
  OrtStatus* (*GetDimensions)(const OrtTensorTypeAndShapeInfo* info, int64_t* dims, size_t count);  // 62
  Slot GetSymbolicDimensions, GetTensorShapeElementCount;                                        // 63-64
  OrtStatus* (*GetTensorTypeAndShape)(const OrtValue* value, OrtTensorTypeAndShapeInfo** out);   // 65
  Slot GetTypeInfo, GetValueType, CreateMemoryInfo;                                              // 66-68
  OrtStatus* (*CreateCpuMemoryInfo)(OrtAllocatorType type, OrtMemType mem_type, OrtMemoryInfo** out);  // 69
  Slot CompareMemoryInfo, MemoryInfoGetName, MemoryInfoGetId, MemoryInfoGetMemType, MemoryInfoGetType,
      AllocatorAlloc;                                                                            // 70-75
  OrtStatus* (*AllocatorFree)(OrtAllocator* allocator, void* p);                                 // 76
  Slot AllocatorGetInfo;                                                                         // 77
  OrtStatus* (*GetAllocatorWithDefaultOptions)(OrtAllocator** out);                              // 78
  Slot AddFreeDimensionOverride, GetValue, GetValueCount, CreateValue, CreateOpaqueValue, GetOpaqueValue,
      KernelInfoGetAttribute_float, KernelInfoGetAttribute_int64, KernelInfoGetAttribute_string,
      KernelContext_GetInputCount, KernelContext_GetOutputCount, KernelContext_GetInput,
      KernelContext_GetOutput;                                                                   // 79-91
  void (*ReleaseEnv)(OrtEnv* value);                                                             // 92
  void (*ReleaseStatus)(OrtStatus* value);                                                       // 93
  void (*ReleaseMemoryInfo)(OrtMemoryInfo* value);                                               // 94
  void (*ReleaseSession)(OrtSession* value);                                                     // 95
  void (*ReleaseValue)(OrtValue* value);                                                         // 96
  void (*ReleaseRunOptions)(OrtRunOptions* value);                                               // 97
  void (*ReleaseTypeInfo)(OrtTypeInfo* value);                                                   // 98
  void (*ReleaseTensorTypeAndShapeInfo)(OrtTensorTypeAndShapeInfo* value);                       // 99
  void (*ReleaseSessionOptions)(OrtSessionOptions* value);                                       // 100
};

static_assert(offsetof(OrtApi, GetErrorMessage) == 2 * sizeof(void*), "OrtApi layout");
static_assert(offsetof(OrtApi, Run) == 9 * sizeof(void*), "OrtApi layout");
static_assert(offsetof(OrtApi, SetSessionGraphOptimizationLevel) == 23 * sizeof(void*), "OrtApi layout");
static_assert(offsetof(OrtApi, CreateTensorWithDataAsOrtValue) == 49 * sizeof(void*), "OrtApi layout");
static_assert(offsetof(OrtApi, GetTensorTypeAndShape) == 65 * sizeof(void*), "OrtApi layout");
static_assert(offsetof(OrtApi, GetAllocatorWithDefaultOptions) == 78 * sizeof(void*), "OrtApi layout");
static_assert(offsetof(OrtApi, ReleaseSessionOptions) == 100 * sizeof(void*), "OrtApi layout");

struct OrtApiBase {
  const OrtApi* (*GetApi)(uint32_t version);
  const char* (*GetVersionString)();
};

typedef const OrtApiBase* (*OrtGetApiBaseFn)();  // the one symbol libonnxruntime.so exports that we use

}  // extern "C"
