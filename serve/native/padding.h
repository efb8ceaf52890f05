// Batches of right-padded sequences (parameter trim_padding): how much of each row its mask uses, a split of
// the rows into runs of similar length when that costs less than padding every row to the longest, and the
// row copies both need.
#pragma once

#include <cstdint>
#include <vector>

namespace tritonstack {

// Used length of each row of a [rows, length] mask of `element_size`-byte integers or BOOLs: one past its last
// non-zero column, at least 1 (an all-zero row runs as one column).
std::vector<int64_t> UsedLengths(const char* mask, int64_t rows, int64_t length, uint64_t element_size);

// The rows (indices into `lengths`) in runs of similar used length that minimise the estimated work,
// sum over runs of (run_cost + rows x the run's longest row), in token-rows. One run holding every row
// means: do not split. run_cost <= 0 never splits.
std::vector<std::vector<int64_t>> SplitByLength(const std::vector<int64_t>& lengths, int64_t run_cost);

// Rows `picked` of a tensor of `row_bytes` bytes per row, the first `keep_bytes` of each, copied into `out`.
void GatherRows(const char* data, uint64_t row_bytes, const std::vector<int64_t>& picked, uint64_t keep_bytes,
                std::vector<char>* out);

}  // namespace tritonstack
