#include "drift_monitor.h"

#include <chrono>
#include <cmath>
#include <cstring>

#include "common.h"

namespace tritonstack {
namespace {

constexpr const char* kPrefix = "tritonstack_drift_";
constexpr std::chrono::seconds kInterval(1);  // DriftMonitor.interval_s = 1.0

// ops.drift._DESCRIPTIONS, in DriftScores.summary() order then window_rows.
const std::pair<const char*, const char*> kGauges[] = {
    {"psi_max", "Largest per-feature population stability index over the sliding window"},
    {"psi_mean", "Mean per-feature population stability index over the sliding window"},
    {"kl_mean", "Mean per-feature KL(window || training reference), natural log"},
    {"js_max", "Largest per-feature Jensen-Shannon divergence, natural log (max ln 2)"},
    {"js_mean", "Mean per-feature Jensen-Shannon divergence, natural log (max ln 2)"},
    {"embedding_mmd", "Squared MMD (RBF kernel) between the newest window rows and a training sample"},
    {"window_rows", "Rows currently in the drift window"},
};
constexpr const char* kFeaturePsi = "PSI of one input feature";

double HalfToDouble(uint16_t h) {
  int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  double value = exponent == 0    ? std::ldexp(mantissa, -24)
                 : exponent == 31 ? (mantissa ? NAN : INFINITY)
                                  : std::ldexp(mantissa + 1024, exponent - 25);
  return (h & 0x8000) ? -value : value;
}

template <typename T>
void Widen(const char* data, size_t count, double* out) {
  for (size_t i = 0; i < count; ++i) {
    T value;
    std::memcpy(&value, data + i * sizeof(T), sizeof(T));
    out[i] = static_cast<double>(value);
  }
}

// The tensor's elements as doubles (np.asarray(batch) assigned into a float64 array); false if unsupported.
bool ToDouble(ONNXTensorElementDataType type, const char* data, size_t count, double* out) {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: Widen<float>(data, count, out); return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: Widen<double>(data, count, out); return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: Widen<int8_t>(data, count, out); return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: Widen<uint8_t>(data, count, out); return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: Widen<int16_t>(data, count, out); return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16: Widen<uint16_t>(data, count, out); return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: Widen<int32_t>(data, count, out); return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32: Widen<uint32_t>(data, count, out); return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: Widen<int64_t>(data, count, out); return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64: Widen<uint64_t>(data, count, out); return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: Widen<bool>(data, count, out); return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16:
      for (size_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, data + i * 2, 2);
        out[i] = HalfToDouble(h);
      }
      return true;
    default: return false;
  }
}

}  // namespace

DriftFamilies::~DriftFamilies() {
  for (auto& entry : families_) LogIfError(TRITONSERVER_MetricFamilyDelete(entry.second), "deleting a metric family");
}

TRITONSERVER_Error* DriftFamilies::Get(const std::string& name, const std::string& description,
                                       TRITONSERVER_MetricFamily** out) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = families_.find(name);
  if (found == families_.end()) {
    TRITONSERVER_MetricFamily* family = nullptr;
    TS_RETURN_IF_ERROR(TRITONSERVER_MetricFamilyNew(&family, TRITONSERVER_METRIC_KIND_GAUGE, name.c_str(),
                                                    description.c_str()));
    found = families_.emplace(name, family).first;
  }
  *out = found->second;
  return nullptr;
}

TRITONSERVER_Error* Gauge::Create(TRITONSERVER_MetricFamily* family,
                                  const std::vector<std::pair<std::string, std::string>>& labels,
                                  std::unique_ptr<Gauge>* out) {
  std::vector<const TRITONSERVER_Parameter*> parameters;
  for (const auto& label : labels) {
    parameters.push_back(TRITONSERVER_ParameterNew(label.first.c_str(), TRITONSERVER_PARAMETER_STRING,
                                                   label.second.c_str()));
  }
  std::unique_ptr<Gauge> gauge(new Gauge());
  TRITONSERVER_Error* err = TRITONSERVER_MetricNew(&gauge->metric_, family, parameters.data(), parameters.size());
  for (const TRITONSERVER_Parameter* parameter : parameters) {
    TRITONSERVER_ParameterDelete(const_cast<TRITONSERVER_Parameter*>(parameter));
  }
  TS_RETURN_IF_ERROR(err);
  *out = std::move(gauge);
  return nullptr;
}

Gauge::~Gauge() {
  if (metric_ != nullptr) LogIfError(TRITONSERVER_MetricDelete(metric_), "deleting a drift gauge");
}

void Gauge::Set(double value) { LogIfError(TRITONSERVER_MetricSet(metric_, value), "setting a drift gauge"); }

TRITONSERVER_Error* DriftMonitor::Create(std::unique_ptr<DriftReference> reference, DriftFamilies* families,
                                         const std::vector<std::pair<std::string, std::string>>& labels,
                                         const DataType* tensor_type, std::unique_ptr<DriftMonitor>* out) {
  std::unique_ptr<DriftMonitor> monitor(new DriftMonitor(std::move(reference), tensor_type));
  TRITONSERVER_MetricFamily* family = nullptr;
  for (const auto& gauge : kGauges) {
    TS_RETURN_IF_ERROR(families->Get(std::string(kPrefix) + gauge.first, gauge.second, &family));
    TS_RETURN_IF_ERROR(Gauge::Create(family, labels, &monitor->gauges_[gauge.first]));
  }
  TS_RETURN_IF_ERROR(families->Get(std::string(kPrefix) + "feature_psi", kFeaturePsi, &family));
  for (size_t j = 0; j < monitor->reference_->features(); ++j) {
    std::vector<std::pair<std::string, std::string>> feature_labels = labels;
    feature_labels.emplace_back("feature", std::to_string(j));
    monitor->feature_psi_.emplace_back();
    TS_RETURN_IF_ERROR(Gauge::Create(family, feature_labels, &monitor->feature_psi_.back()));
  }
  for (const auto& gauge : monitor->gauges_) {  // no score until the window holds min_rows rows (not 0: "no drift")
    if (gauge.first != "window_rows") gauge.second->Set(NAN);
  }
  for (const auto& gauge : monitor->feature_psi_) gauge->Set(NAN);
  DriftMonitor* self = monitor.get();
  monitor->publisher_ = std::thread([self] { self->PublishLoop(); });
  *out = std::move(monitor);
  return nullptr;
}

std::string DriftMonitor::Observe(const char* data, uint64_t bytes) {
  size_t count = static_cast<size_t>(bytes / type_->byte_size), width = reference_->features();
  if (count % width != 0) {
    return "tensor '" + reference_->tensor + "' has " + std::to_string(count) +
           " elements, not a multiple of the reference's " + std::to_string(width) + " features";
  }
  size_t keep = std::min(count / width, static_cast<size_t>(reference_->window_rows));
  size_t skip = (count / width - keep) * width;
  rows_.resize(keep * width);
  if (!ToDouble(type_->onnx, data + skip * type_->byte_size, keep * width, rows_.data())) {
    return std::string("tensor type ") + type_->config_name + " cannot be monitored";
  }
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    window_.Add(rows_.data(), keep);
    wake = !pending_;
    pending_ = true;
  }
  if (wake) wake_.notify_one();  // once per publication at most: the thread is idle or waiting for its second
  return "";
}

DriftMonitor::~DriftMonitor() {
  if (!publisher_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  publisher_.join();
}

// Idle until rows arrive; publish; then wait out the second before publishing what arrived since.
void DriftMonitor::PublishLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stop_ || pending_; });
    if (stop_) return;
    pending_ = false;
    DriftWindow snapshot(window_);  // scored without the lock: Observe never waits for the scoring
    lock.unlock();
    Publish(snapshot);
    lock.lock();
    auto due = std::chrono::steady_clock::now() + kInterval;
    if (wake_.wait_until(lock, due, [this] { return stop_; })) return;
  }
}

void DriftMonitor::Publish(const DriftWindow& window) {
  gauges_["window_rows"]->Set(static_cast<double>(window.count()));
  if (window.count() < static_cast<size_t>(reference_->min_rows)) return;
  std::vector<double> psi;
  DriftSummary s = window.Scores(&psi);
  gauges_["psi_max"]->Set(s.psi_max);
  gauges_["psi_mean"]->Set(s.psi_mean);
  gauges_["kl_mean"]->Set(s.kl_mean);
  gauges_["js_max"]->Set(s.js_max);
  gauges_["js_mean"]->Set(s.js_mean);
  gauges_["embedding_mmd"]->Set(s.embedding_mmd);
  for (size_t j = 0; j < psi.size(); ++j) feature_psi_[j]->Set(psi[j]);
}

}  // namespace tritonstack
