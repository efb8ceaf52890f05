// Error, logging and clock helpers shared by every file of the backend. One macro checks every
// TRITONSERVER_Error*; ort_runtime.h has the one for OrtStatus*.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "triton_abi.h"

namespace tritonstack {

#define TS_RETURN_IF_ERROR(X)                      \
  do {                                             \
    TRITONSERVER_Error* ts_err__ = (X);            \
    if (ts_err__ != nullptr) return ts_err__;      \
  } while (false)

#define TS_LOG(LEVEL, MSG) ::tritonstack::Log((LEVEL), __FILE__, __LINE__, (MSG))

inline TRITONSERVER_Error* Error(TRITONSERVER_Error_Code code, const std::string& message) {
  return TRITONSERVER_ErrorNew(code, message.c_str());
}

inline void Log(TRITONSERVER_LogLevel level, const char* file, int line, const std::string& message) {
  TRITONSERVER_Error* err = TRITONSERVER_LogMessage(level, file, line, message.c_str());
  if (err != nullptr) TRITONSERVER_ErrorDelete(err);
}

// Log and drop an error that cannot be returned anywhere (e.g. while responding).
inline void LogIfError(TRITONSERVER_Error* err, const char* what) {
  if (err == nullptr) return;
  TS_LOG(TRITONSERVER_LOG_ERROR, std::string(what) + ": " + TRITONSERVER_ErrorMessage(err));
  TRITONSERVER_ErrorDelete(err);
}

// Steady-clock nanoseconds, the clock Triton's statistics expect.
inline uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// "[2, 64]"
inline std::string ShapeString(const int64_t* shape, size_t dims) {
  std::string text = "[";
  for (size_t i = 0; i < dims; ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

inline std::string ShapeString(const std::vector<int64_t>& shape) { return ShapeString(shape.data(), shape.size()); }

}  // namespace tritonstack
