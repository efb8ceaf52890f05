#include "drift.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "json.h"

namespace tritonstack {
namespace {

constexpr double kPseudoCount = 0.5;  // ops.drift._PSEUDO_COUNT

bool Numbers(const Json& array, std::vector<double>* out) {
  if (array.kind() != Json::Kind::kArray) return false;
  out->clear();
  for (const Json& item : array.items()) {
    double value = 0;
    if (!item.AsDouble(&value)) return false;
    out->push_back(value);
  }
  return true;
}

std::string ReadFeatures(const Json& features, DriftReference* out) {
  if (features.kind() != Json::Kind::kArray) return "'features' is not a list";
  for (const Json& feature : features.items()) {
    std::vector<double> cuts, expected;
    const Json* c = feature.Get("cuts");
    const Json* e = feature.Get("expected");
    if (c == nullptr || e == nullptr || !Numbers(*c, &cuts) || !Numbers(*e, &expected)) {
      return "a feature lacks numeric 'cuts' / 'expected' lists";
    }
    if (expected.size() != cuts.size() + 1) return "a feature has " + std::to_string(cuts.size()) +
                                                   " cuts but " + std::to_string(expected.size()) + " proportions";
    out->cuts.push_back(std::move(cuts));
    out->expected.push_back(std::move(expected));
  }
  return out->cuts.empty() ? "no features" : "";
}

std::string ReadSample(const Json& sample, DriftReference* out) {
  if (sample.kind() != Json::Kind::kArray || sample.items().empty()) return "'sample' is not a list of rows";
  for (const Json& row : sample.items()) {
    std::vector<double> values;
    if (!Numbers(row, &values) || values.size() != out->features()) {
      return "sample rows do not have " + std::to_string(out->features()) + " numbers";
    }
    out->sample.insert(out->sample.end(), values.begin(), values.end());
  }
  out->sample_rows = sample.items().size();
  return "";
}

std::string ReadReference(const Json& doc, DriftReference* out) {
  int64_t format = 0;
  const Json* features = doc.Get("features");
  const Json* sample = doc.Get("sample");
  const Json* bandwidth = doc.Get("bandwidth");
  if (!doc.Int("format", &format) || format != 1 || features == nullptr || sample == nullptr ||
      doc.Get("tensor") == nullptr || doc.Get("source") == nullptr) {
    return "not format 1 or misses keys; rebuild it with reference_from_training";
  }
  out->tensor = doc.String("tensor");
  std::string source = doc.String("source");
  if (source != "input" && source != "output") return "source '" + source + "' is neither 'input' nor 'output'";
  out->output = source == "output";
  if (!doc.Int("window_rows", &out->window_rows) || !doc.Int("min_rows", &out->min_rows) || bandwidth == nullptr ||
      !bandwidth->AsDouble(&out->bandwidth)) {
    return "window_rows, min_rows or bandwidth missing";
  }
  if (out->min_rows < 1 || out->min_rows > out->window_rows || out->window_rows > (int64_t{1} << 24)) {
    return "min_rows=" + std::to_string(out->min_rows) + " must be in 1..window_rows=" + std::to_string(out->window_rows);
  }
  std::string problem = ReadFeatures(*features, out);
  return problem.empty() ? ReadSample(*sample, out) : problem;
}

// Bin proportions of `column` over `cuts` (np.searchsorted side="right", smoothed like _proportions).
std::vector<double> Proportions(const std::vector<double>& cuts, const std::vector<double>& column) {
  std::vector<double> counts(cuts.size() + 1, kPseudoCount);
  for (double value : column) counts[std::upper_bound(cuts.begin(), cuts.end(), value) - cuts.begin()] += 1;
  double total = 0;
  for (double c : counts) total += c;
  for (double& c : counts) c /= total;
  return counts;
}

double Kl(const std::vector<double>& p, const std::vector<double>& q) {
  double sum = 0;
  for (size_t i = 0; i < p.size(); ++i) sum += p[i] * std::log(p[i] / q[i]);
  return sum;
}

double Psi(const std::vector<double>& expected, const std::vector<double>& actual) {
  double sum = 0;
  for (size_t i = 0; i < actual.size(); ++i) sum += (actual[i] - expected[i]) * std::log(actual[i] / expected[i]);
  return sum;
}

double Js(const std::vector<double>& p, const std::vector<double>& q) {
  std::vector<double> m(p.size());
  for (size_t i = 0; i < p.size(); ++i) m[i] = (p[i] + q[i]) / 2;
  return (Kl(p, m) + Kl(q, m)) / 2;
}

// Squared norm of each of the n rows of x (d columns).
std::vector<double> RowNorms(const double* x, size_t n, size_t d) {
  std::vector<double> norms(n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    const double* a = x + i * d;
    for (size_t k = 0; k < d; ++k) norms[i] += a[k] * a[k];
  }
  return norms;
}

// Dot product of two d-vectors in four independent sums (the order differs from numpy's BLAS anyway; the
// gauges agree with the Python runner's to 1e-6).
double Dot(const double* a, const double* b, size_t d) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t k = 0;
  for (; k + 4 <= d; k += 4) {
    s0 += a[k] * b[k], s1 += a[k + 1] * b[k + 1], s2 += a[k + 2] * b[k + 2], s3 += a[k + 3] * b[k + 3];
  }
  for (; k < d; ++k) s0 += a[k] * b[k];
  return (s0 + s1) + (s2 + s3);
}

// Mean of the RBF kernel between the rows of x (n rows) and y (m rows), d columns (ops.drift._rbf), with their
// squared row norms given. `same`: y is x, so each pair is computed once (the diagonal is exp(0) = 1).
// Off the request path (once a second) but on the server's cores: 256 x 256 rows of 64 features took ~16 ms
// when every pair recomputed both norms and the reference's own kernel mean was recomputed each time.
double KernelMean(const double* x, const std::vector<double>& xx, const double* y, const std::vector<double>& yy,
                  size_t d, double bandwidth, bool same) {
  size_t n = xx.size(), m = yy.size();
  if (n == 0 || m == 0) return 0;
  double scale = 2 * bandwidth * bandwidth, sum = same ? static_cast<double>(n) : 0;
  for (size_t i = 0; i < n; ++i) {
    const double* a = x + i * d;
    for (size_t j = same ? i + 1 : 0; j < m; ++j) {
      const double* b = y + j * d;
      double ab = Dot(a, b, d);
      double value = std::exp(-std::max(xx[i] + yy[j] - 2 * ab, 0.0) / scale);
      sum += same ? 2 * value : value;
    }
  }
  return sum / (static_cast<double>(n) * static_cast<double>(m));
}

}  // namespace

std::string LoadDriftReference(const std::string& path, DriftReference* out) {
  std::ifstream file(path);
  if (!file) return "cannot open " + path;
  std::stringstream text;
  text << file.rdbuf();
  Json doc;
  std::string error;
  if (!Json::Parse(text.str(), &doc, &error)) return error;
  *out = DriftReference();
  return ReadReference(doc, out);
}

void DriftWindow::Add(const double* rows, size_t count) {
  size_t capacity = static_cast<size_t>(ref_.window_rows), width = ref_.features();
  if (count > capacity) rows += (count - capacity) * width, count = capacity;
  for (size_t r = 0; r < count; ++r) {
    std::copy(rows + r * width, rows + (r + 1) * width, rows_.begin() + static_cast<ptrdiff_t>(next_ * width));
    next_ = (next_ + 1) % capacity;
  }
  count_ = std::min(count_ + count, capacity);
}

std::vector<double> DriftWindow::Newest(size_t rows) const {
  size_t capacity = static_cast<size_t>(ref_.window_rows), width = ref_.features();
  rows = std::min(rows, count_);
  std::vector<double> out(rows * width);
  for (size_t r = 0; r < rows; ++r) {
    size_t index = (next_ + capacity - rows + r) % capacity;
    std::copy(rows_.begin() + static_cast<ptrdiff_t>(index * width),
              rows_.begin() + static_cast<ptrdiff_t>((index + 1) * width), out.begin() + static_cast<ptrdiff_t>(r * width));
  }
  return out;
}

DriftWindow::DriftWindow(const DriftReference& reference)
    : ref_(reference), rows_(static_cast<size_t>(reference.window_rows) * reference.features()) {
  size_t d = ref_.features();
  sample_norms_ = RowNorms(ref_.sample.data(), ref_.sample_rows, d);
  sample_self_ = KernelMean(ref_.sample.data(), sample_norms_, ref_.sample.data(), sample_norms_, d, ref_.bandwidth,
                            true);
}

// Rows with a NaN or inf count as one point infinitely far from every finite row (kernel 0 with those, 1 among
// themselves): `rows` finite rows in `x` out of `total`. All finite: the plain biased estimate.
double DriftWindow::Mmd(const std::vector<double>& x, size_t rows, size_t total) const {
  size_t d = ref_.features();
  double n = static_cast<double>(total), m = static_cast<double>(rows), odd = n - m;
  double xx_mean = odd * odd, xy_mean = 0;
  if (rows > 0) {
    std::vector<double> xx = RowNorms(x.data(), rows, d);
    xx_mean += m * m * KernelMean(x.data(), xx, x.data(), xx, d, ref_.bandwidth, true);
    xy_mean = m * KernelMean(x.data(), xx, ref_.sample.data(), sample_norms_, d, ref_.bandwidth, false);
  }
  double value = xx_mean / (n * n) + sample_self_ - 2 * xy_mean / n;
  return std::max(value, 0.0);
}

DriftSummary DriftWindow::Scores(std::vector<double>* feature_psi) const {
  size_t width = ref_.features();
  std::vector<double> window = Newest(count_);
  DriftSummary summary;
  feature_psi->assign(width, 0);
  std::vector<double> column(count_);
  double psi_sum = 0, kl_sum = 0, js_sum = 0;
  summary.psi_max = summary.js_max = -INFINITY;
  for (size_t j = 0; j < width; ++j) {
    for (size_t r = 0; r < count_; ++r) column[r] = window[r * width + j];
    std::vector<double> actual = Proportions(ref_.cuts[j], column);
    double psi = Psi(ref_.expected[j], actual), js = Js(actual, ref_.expected[j]);
    (*feature_psi)[j] = psi;
    psi_sum += psi, kl_sum += Kl(actual, ref_.expected[j]), js_sum += js;
    summary.psi_max = std::max(summary.psi_max, psi);
    summary.js_max = std::max(summary.js_max, js);
  }
  summary.psi_mean = psi_sum / static_cast<double>(width);
  summary.kl_mean = kl_sum / static_cast<double>(width);
  summary.js_mean = js_sum / static_cast<double>(width);
  if (count_ > 0) {  // over the newest sample_rows rows; rows with a NaN or inf apart (see Mmd)
    size_t total = std::min(count_, ref_.sample_rows);
    std::vector<double> newest = Newest(total);
    size_t finite = 0;
    for (size_t r = 0; r * width < newest.size(); ++r) {
      const double* row = newest.data() + r * width;
      if (!std::all_of(row, row + width, [](double v) { return std::isfinite(v); })) continue;
      std::copy(row, row + width, newest.begin() + static_cast<ptrdiff_t>(finite * width));
      ++finite;
    }
    newest.resize(finite * width);
    summary.embedding_mmd = Mmd(newest, finite, total);
  }
  return summary;
}

}  // namespace tritonstack
