// Publishes a DriftWindow's scores as the `tritonstack_drift_*` gauges through Triton's custom metrics C API,
// with the same names, descriptions, labels and cadence as the Python runner's ops.drift.DriftMonitor.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "drift.h"
#include "triton_abi.h"
#include "types.h"

namespace tritonstack {

// The gauge families, one per name for the whole backend: created on first use, deleted at backend finalize
// (after every model, hence every metric, is gone).
class DriftFamilies {
 public:
  ~DriftFamilies();
  TRITONSERVER_Error* Get(const std::string& name, const std::string& description, TRITONSERVER_MetricFamily** out);

 private:
  std::mutex mutex_;
  std::map<std::string, TRITONSERVER_MetricFamily*> families_;
};

// One gauge (a TRITONSERVER_Metric), deleted with this object.
class Gauge {
 public:
  static TRITONSERVER_Error* Create(TRITONSERVER_MetricFamily* family,
                                    const std::vector<std::pair<std::string, std::string>>& labels,
                                    std::unique_ptr<Gauge>* out);
  ~Gauge();
  void Set(double value);

 private:
  TRITONSERVER_Metric* metric_ = nullptr;
};

class DriftMonitor {
 public:
  // Labels: model, version, model_instance. `tensor_type` is the monitored tensor's element type.
  static TRITONSERVER_Error* Create(std::unique_ptr<DriftReference> reference, DriftFamilies* families,
                                    const std::vector<std::pair<std::string, std::string>>& labels,
                                    const DataType* tensor_type, std::unique_ptr<DriftMonitor>* out);

  const DriftReference& reference() const { return *reference_; }
  // Add a Run's rows of the monitored tensor.
  // "" or why monitoring must stop (elements not a multiple of the features: the caller turns it off).
  std::string Observe(const char* data, uint64_t bytes);
  // Score the window and set the gauges when due (at most once a second): after the responses are sent.
  void PublishIfDue();

 private:
  DriftMonitor(std::unique_ptr<DriftReference> reference, const DataType* type)
      : reference_(std::move(reference)), window_(*reference_), type_(type) {}
  void Publish();

  std::unique_ptr<DriftReference> reference_;
  DriftWindow window_;
  const DataType* type_;
  std::map<std::string, std::unique_ptr<Gauge>> gauges_;
  std::vector<std::unique_ptr<Gauge>> feature_psi_;
  uint64_t last_ns_ = 0;
  bool published_ = false;
  std::vector<double> rows_;  // conversion scratch
};

}  // namespace tritonstack
