// Data drift at serving time, the native twin of tritonstack.ops.drift: the reference written at convert
// time (drift_reference.json, format 1), a sliding window of the monitored tensor's rows, and its scores
// (per-feature PSI / KL / JS over the reference bins, squared RBF MMD against the reference sample).
// Same arithmetic as the numpy code, in double precision, so both runners publish the same gauges.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tritonstack {

struct DriftReference {
  std::string tensor;
  bool output = false;  // source "output": the tensor is a model output (an embedding)
  int64_t window_rows = 1000;
  int64_t min_rows = 200;
  double bandwidth = 1.0;
  std::vector<std::vector<double>> cuts;      // per feature, ascending
  std::vector<std::vector<double>> expected;  // per feature, cuts + 1 proportions
  std::vector<double> sample;                 // sample_rows x features, row-major
  size_t sample_rows = 0;
  size_t features() const { return cuts.size(); }
};

// Read a reference written by DriftReference.save; "" or why it cannot be used.
std::string LoadDriftReference(const std::string& path, DriftReference* out);

// Aggregates over features, as exported to Prometheus (DriftScores.summary()).
struct DriftSummary {
  double psi_max = 0, psi_mean = 0, kl_mean = 0, js_max = 0, js_mean = 0, embedding_mmd = 0;
};

// The newest `window_rows` rows of the monitored tensor (a ring buffer).
class DriftWindow {
 public:
  explicit DriftWindow(const DriftReference& reference);

  // Append `count` rows of `features()` values; the oldest rows fall out.
  void Add(const double* rows, size_t count);
  size_t count() const { return count_; }
  // Score the window: per-feature PSI in `feature_psi`, aggregates returned.
  DriftSummary Scores(std::vector<double>* feature_psi) const;

 private:
  std::vector<double> Newest(size_t rows) const;  // chronological order, row-major
  double Mmd(const std::vector<double>& x, size_t rows, size_t total) const;

  const DriftReference& ref_;
  std::vector<double> rows_;
  size_t next_ = 0;
  size_t count_ = 0;
  std::vector<double> sample_norms_;  // squared norms of the reference sample's rows
  double sample_self_ = 0;            // the sample's own RBF kernel mean (the constant term of the MMD)
};

}  // namespace tritonstack
