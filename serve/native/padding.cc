#include "padding.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>

namespace tritonstack {

std::vector<int64_t> UsedLengths(const char* mask, int64_t rows, int64_t length, uint64_t element_size) {
  std::vector<int64_t> used(static_cast<size_t>(rows), 1);
  const uint64_t row_bytes = static_cast<uint64_t>(length) * element_size;
  for (int64_t r = 0; r < rows; ++r) {
    const char* row = mask + static_cast<uint64_t>(r) * row_bytes;
    for (int64_t c = length - 1; c >= 1; --c) {
      const char* element = row + static_cast<uint64_t>(c) * element_size;
      if (std::any_of(element, element + element_size, [](char byte) { return byte != 0; })) {
        used[r] = c + 1;
        break;
      }
    }
  }
  return used;
}

std::vector<std::vector<int64_t>> SplitByLength(const std::vector<int64_t>& lengths, int64_t run_cost) {
  const size_t n = lengths.size();
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  if (run_cost <= 0 || n < 2) return {order};
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return lengths[a] < lengths[b]; });
  // best[j]: least work for the j shortest rows; a run of sorted rows [i, j) costs run_cost + (j - i) x longest.
  std::vector<double> best(n + 1, std::numeric_limits<double>::infinity());
  std::vector<size_t> start(n + 1, 0);
  best[0] = 0;
  for (size_t j = 1; j <= n; ++j) {
    const double longest = static_cast<double>(lengths[order[j - 1]]);
    for (size_t i = 0; i < j; ++i) {
      double work = best[i] + static_cast<double>(run_cost) + static_cast<double>(j - i) * longest;
      if (work < best[j]) best[j] = work, start[j] = i;
    }
  }
  std::vector<std::vector<int64_t>> runs;
  for (size_t j = n; j > 0; j = start[j]) runs.emplace_back(order.begin() + start[j], order.begin() + j);
  std::reverse(runs.begin(), runs.end());
  return runs;
}

void GatherRows(const char* data, uint64_t row_bytes, const std::vector<int64_t>& picked, uint64_t keep_bytes,
                std::vector<char>* out) {
  out->resize(picked.size() * keep_bytes);
  for (size_t k = 0; k < picked.size(); ++k) {
    if (keep_bytes > 0) std::memcpy(out->data() + k * keep_bytes, data + static_cast<uint64_t>(picked[k]) * row_bytes, keep_bytes);
  }
}

}  // namespace tritonstack
