// Publishes a DriftWindow's scores as the `tritonstack_drift_*` gauges through Triton's custom metrics C API,
// with the same names, descriptions, labels and cadence as the Python runner's ops.drift.DriftMonitor.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
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

// Scores and gauges are computed on the monitor's own thread, never on the request path: the first rows are
// published at once, later rows at most once a second, and rows that arrive after a publication are published
// when their second is up even if no request follows (else the gauges would keep a window that has passed).
class DriftMonitor {
 public:
  // Labels: model, version, model_instance. `tensor_type` is the monitored tensor's element type.
  static TRITONSERVER_Error* Create(std::unique_ptr<DriftReference> reference, DriftFamilies* families,
                                    const std::vector<std::pair<std::string, std::string>>& labels,
                                    const DataType* tensor_type, std::unique_ptr<DriftMonitor>* out);
  ~DriftMonitor();  // stops and joins the publishing thread

  const DriftReference& reference() const { return *reference_; }
  // Add a Run's rows of the monitored tensor (called by one thread, the instance's executor).
  // "" or why monitoring must stop (elements not a multiple of the features: the caller turns it off).
  std::string Observe(const char* data, uint64_t bytes);

 private:
  DriftMonitor(std::unique_ptr<DriftReference> reference, const DataType* type)
      : reference_(std::move(reference)), window_(*reference_), type_(type) {}
  void PublishLoop();
  void Publish(const DriftWindow& window);

  std::unique_ptr<DriftReference> reference_;
  DriftWindow window_;  // guarded by mutex_
  const DataType* type_;
  std::map<std::string, std::unique_ptr<Gauge>> gauges_;
  std::vector<std::unique_ptr<Gauge>> feature_psi_;
  std::vector<double> rows_;  // conversion scratch (executor thread only)
  std::mutex mutex_;
  std::condition_variable wake_;
  bool pending_ = false;  // rows added since the last publication
  bool stop_ = false;
  std::thread publisher_;
};

}  // namespace tritonstack
