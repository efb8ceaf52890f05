#include "executor.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <numeric>

#include "common.h"
#include "padding.h"

namespace tritonstack {
namespace {

// The non-batch part of every input's shape: requests concatenate only when these agree.
std::vector<int64_t> Signature(const Pending& pending) {
  std::vector<int64_t> key;
  for (const InputView& view : pending.inputs) {
    key.push_back(static_cast<int64_t>(view.shape.size()));
    key.insert(key.end(), view.shape.begin() + 1, view.shape.end());
  }
  return key;
}

// The same error, now with code INVALID_ARG: the request is at fault when others of its batch ran.
TRITONSERVER_Error* AsInvalidArgument(TRITONSERVER_Error* err) {
  if (TRITONSERVER_ErrorCode(err) == TRITONSERVER_ERROR_INVALID_ARG) return err;
  TRITONSERVER_Error* blamed = Error(TRITONSERVER_ERROR_INVALID_ARG, TRITONSERVER_ErrorMessage(err));
  TRITONSERVER_ErrorDelete(err);
  return blamed;
}

}  // namespace

void Executor::Execute(TRITONBACKEND_Request** requests, uint32_t count) {
  exec_start_ns_ = NowNs();
  warming_ = warmup_left_ > 0;
  if (warming_) --warmup_left_;
  std::vector<Pending> pending(count);
  for (uint32_t i = 0; i < count; ++i) pending[i].request = requests[i];
  Validate(&pending);
  if (config_.batched()) {
    for (const std::vector<Pending*>& group : Group(&pending)) RunGroup(group);
  } else {
    for (Pending& one : pending) {
      if (one.error == nullptr) RunAlone({&one});
    }
  }
  Finish(&pending);
}

void Executor::Validate(std::vector<Pending>* pending) {
  for (Pending& one : *pending) {
    one.error = ReadInputs(config_, &one);
    if (one.error != nullptr) {
      SendError(&one, one.error);
      one.exec_end_ns = NowNs();
    }
  }
}

std::vector<std::vector<Pending*>> Executor::Group(std::vector<Pending>* pending) const {
  std::vector<std::vector<int64_t>> keys;
  std::vector<int64_t> rows;
  std::vector<std::vector<Pending*>> groups;
  for (Pending& one : *pending) {
    if (one.error != nullptr) continue;
    std::vector<int64_t> key = Signature(one);
    size_t g = 0;
    while (g < keys.size() && (keys[g] != key || rows[g] + one.rows > config_.max_batch_size)) ++g;
    if (g == keys.size()) {  // a new shape, or the batch of this shape is full
      keys.push_back(key);
      rows.push_back(0);
      groups.emplace_back();
    }
    rows[g] += one.rows;
    groups[g].push_back(&one);
  }
  return groups;
}

void Executor::RunGroup(const std::vector<Pending*>& group) {
  if (group.size() == 1) return RunAlone(group);
  TRITONSERVER_Error* err = RunAndSend(group);
  if (err == nullptr) return;
  TS_LOG(TRITONSERVER_LOG_VERBOSE, std::string("batch of ") + std::to_string(group.size()) +
                                       " requests failed; running them one by one: " + TRITONSERVER_ErrorMessage(err));
  TRITONSERVER_ErrorDelete(err);
  std::vector<Pending*> failed;
  for (Pending* one : group) {
    TRITONSERVER_Error* alone = RunAndSend({one});
    if (alone != nullptr) one->error = alone, failed.push_back(one);
  }
  bool others_ran = failed.size() < group.size();
  for (Pending* one : failed) {
    if (others_ran) one->error = AsInvalidArgument(one->error);
    SendError(one, one->error);
    one->exec_end_ns = NowNs();
  }
}

void Executor::RunAlone(const std::vector<Pending*>& group) {
  Pending* one = group[0];
  TRITONSERVER_Error* err = RunAndSend(group);
  if (err != nullptr) {
    one->error = err;
    SendError(one, one->error);
    one->exec_end_ns = NowNs();
  }
}

// The group's Run (or runs, see Runs) over its concatenated inputs; on success every request of the group has
// its response. A SendOutputs failure after a good Run becomes that request's own error (already responded);
// the returned error is the Run's, and then no request of the group has been responded to.
TRITONSERVER_Error* Executor::RunAndSend(const std::vector<Pending*>& group) {
  std::vector<std::vector<int64_t>> shapes;
  Concatenate(group, &shapes);
  int64_t rows = 0;
  for (const Pending* one : group) rows += one->rows;
  std::vector<std::vector<int64_t>> runs = Runs(shapes);
  std::vector<OrtPtr<OrtValue>> outputs;  // the one Run's; described points into them
  std::vector<OutputInfo> described;
  uint64_t compute_start = NowNs();
  TRITONSERVER_Error* err = nullptr;
  if (runs.size() > 1) {
    err = RunEach(shapes, runs, rows, &described);
  } else {
    TrimPadding(&shapes);
    err = RunOnce(shapes, &outputs);
    if (err == nullptr) err = DescribeOutputs(session_->runtime(), config_, rows, outputs, &described);
  }
  uint64_t compute_end = NowNs();
  if (err != nullptr) return err;
  if (drift_ && !warming_) Observe(described);  // the rows are copied now, while every buffer is surely alive
  int64_t offset = 0;
  for (Pending* one : group) {
    one->compute_start_ns = compute_start;
    one->compute_end_ns = compute_end;
    one->error = SendOutputs(config_, described, offset, one);
    one->exec_end_ns = NowNs();
    offset += one->rows;
  }
  LogIfError(TRITONBACKEND_ModelInstanceReportBatchStatistics(instance_, config_.batched() ? rows : 1, exec_start_ns_,
                                                              compute_start, compute_end, NowNs()),
             "reporting batch statistics");
  return nullptr;
}

// input_data_ and the shapes of the group's inputs: the request's own buffers for one request, else a
// concatenation along the batch axis.
void Executor::Concatenate(const std::vector<Pending*>& group, std::vector<std::vector<int64_t>>* shapes) {
  scratch_.resize(config_.inputs.size());
  input_data_.assign(config_.inputs.size(), {nullptr, 0});
  shapes->assign(config_.inputs.size(), {});
  for (size_t i = 0; i < config_.inputs.size(); ++i) {
    std::vector<int64_t>& shape = (*shapes)[i] = group[0]->inputs[i].shape;
    const char* data = group[0]->inputs[i].data;
    uint64_t bytes = group[0]->inputs[i].bytes;
    if (group.size() > 1) {
      shape[0] = 0;
      bytes = 0;
      for (const Pending* one : group) bytes += one->inputs[i].bytes, shape[0] += one->inputs[i].shape[0];
      scratch_[i].resize(bytes);
      uint64_t offset = 0;
      for (const Pending* one : group) {
        if (one->inputs[i].bytes > 0) std::memcpy(scratch_[i].data() + offset, one->inputs[i].data, one->inputs[i].bytes);
        offset += one->inputs[i].bytes;
      }
      data = scratch_[i].data();
    }
    input_data_[i] = {data, bytes};
  }
}

// One Run over input_data_ with these shapes.
TRITONSERVER_Error* Executor::RunOnce(const std::vector<std::vector<int64_t>>& shapes,
                                      std::vector<OrtPtr<OrtValue>>* outputs) {
  static char empty = 0;
  const OrtApi* api = session_->runtime().api();
  std::vector<OrtPtr<OrtValue>> values;
  std::vector<OrtValue*> raw;
  for (size_t i = 0; i < config_.inputs.size(); ++i) {
    OrtValue* value = nullptr;
    auto [data, bytes] = input_data_[i];
    void* buffer = bytes > 0 ? const_cast<char*>(data) : &empty;  // ORT only reads inputs
    TS_RETURN_IF_ORT(api, api->CreateTensorWithDataAsOrtValue(session_->cpu(), buffer, bytes, shapes[i].data(),
                                                              shapes[i].size(), config_.inputs[i].type->onnx, &value),
                     "input '" + config_.inputs[i].name + "'");
    values.push_back(session_->runtime().Own(value));
    raw.push_back(value);
  }
  return session_->Run(raw, outputs);
}

// trim_padding: the mask-shaped inputs' columns that no row uses (mask 0 in every row, at the end of axis 1)
// are cut, so a batch of texts padded to a length bucket runs at its longest text's length, as unpadded.
void Executor::TrimPadding(std::vector<std::vector<int64_t>>* shapes) {
  if (config_.trim_mask < 0) return;
  const std::vector<int64_t> mask_shape = (*shapes)[config_.trim_mask];
  if (mask_shape.size() != 2 || mask_shape[0] == 0 || mask_shape[1] <= 1) return;
  const int64_t rows = mask_shape[0], length = mask_shape[1];
  if (run_lengths_.empty()) {  // Runs did not look at the mask
    run_lengths_ = UsedLengths(input_data_[config_.trim_mask].first, rows, length,
                               config_.inputs[config_.trim_mask].type->byte_size);
  }
  const int64_t kept = *std::max_element(run_lengths_.begin(), run_lengths_.end());
  if (kept == length) return;
  std::vector<int64_t> every(static_cast<size_t>(rows));
  std::iota(every.begin(), every.end(), 0);
  trimmed_.resize(config_.inputs.size());
  for (size_t i = 0; i < config_.inputs.size(); ++i) {
    if ((*shapes)[i] != mask_shape) continue;
    const uint64_t element = config_.inputs[i].type->byte_size;
    GatherRows(input_data_[i].first, length * element, every, kept * element, &trimmed_[i]);
    input_data_[i] = {trimmed_[i].data(), trimmed_[i].size()};
    (*shapes)[i][1] = kept;
  }
}

// The batch's rows in several runs, or {} for one run:
// - trim_padding with trim_padding_run_cost > 0: in groups of similar used length when that is less work than
//   one run padded to the longest row (see SplitByLength); not with drift monitoring (it observes the batch as
//   one tensor), nor above 256 rows (the split's search is quadratic);
// - otherwise, more than max_run_rows rows: consecutive slices of max_run_rows rows (ONNX Runtime runs small
//   models 10-20% faster per row at 512-2048 rows than at 4096: their activations stay in cache).
std::vector<std::vector<int64_t>> Executor::Runs(const std::vector<std::vector<int64_t>>& shapes) {
  run_lengths_.clear();
  if (!config_.batched() || shapes.empty() || shapes[0].empty()) return {};
  const int64_t rows = shapes[0][0];
  if (config_.trim_mask >= 0 && config_.trim_run_cost > 0 && !drift_) {
    const std::vector<int64_t>& mask_shape = shapes[config_.trim_mask];
    if (mask_shape.size() == 2 && rows >= 2 && rows <= 256 && mask_shape[1] > 1) {
      run_lengths_ = UsedLengths(input_data_[config_.trim_mask].first, rows, mask_shape[1],
                                 config_.inputs[config_.trim_mask].type->byte_size);
      return SplitByLength(run_lengths_, config_.trim_run_cost);
    }
  }
  if (config_.max_run_rows <= 0 || rows <= config_.max_run_rows || !config_.fixed_outputs() || drift_) return {};
  std::vector<std::vector<int64_t>> runs;
  for (int64_t first = 0; first < rows; first += config_.max_run_rows) {
    runs.emplace_back(static_cast<size_t>(std::min(config_.max_run_rows, rows - first)));
    std::iota(runs.back().begin(), runs.back().end(), first);
  }
  return runs;
}

// One Run per group of rows (each cut to its longest row), the outputs put back in row order in outputs_.
TRITONSERVER_Error* Executor::RunEach(const std::vector<std::vector<int64_t>>& shapes,
                                      const std::vector<std::vector<int64_t>>& runs, int64_t rows,
                                      std::vector<OutputInfo>* described) {
  const bool trimming = !run_lengths_.empty();  // groups of similar length, each cut to its longest row
  const std::vector<int64_t> mask_shape = trimming ? shapes[config_.trim_mask] : std::vector<int64_t>();
  const std::vector<std::pair<const char*, uint64_t>> whole = input_data_;
  parts_.resize(config_.inputs.size());
  outputs_.resize(config_.outputs.size());
  described->assign(config_.outputs.size(), OutputInfo());
  for (const std::vector<int64_t>& run : runs) {
    int64_t width = 0;
    for (int64_t row : trimming ? run : std::vector<int64_t>()) width = std::max(width, run_lengths_[row]);
    bool slice = true;  // consecutive rows in order
    for (size_t k = 1; k < run.size() && slice; ++k) slice = run[k] == run[0] + static_cast<int64_t>(k);
    std::vector<std::vector<int64_t>> part_shapes = shapes;
    for (size_t i = 0; i < config_.inputs.size(); ++i) {
      const uint64_t row_bytes = whole[i].second / static_cast<uint64_t>(rows);
      const bool padded = trimming && shapes[i] == mask_shape;
      const uint64_t keep = padded ? row_bytes / static_cast<uint64_t>(mask_shape[1]) * width : row_bytes;
      if (slice && keep == row_bytes) {  // the rows as they lie, no copy
        input_data_[i] = {whole[i].first + static_cast<uint64_t>(run.front()) * row_bytes, run.size() * row_bytes};
      } else {
        GatherRows(whole[i].first, row_bytes, run, keep, &parts_[i]);
        input_data_[i] = {parts_[i].data(), parts_[i].size()};
      }
      part_shapes[i][0] = static_cast<int64_t>(run.size());
      if (padded) part_shapes[i][1] = width;
    }
    std::vector<OrtPtr<OrtValue>> values;
    std::vector<OutputInfo> part;
    TS_RETURN_IF_ERROR(RunOnce(part_shapes, &values));
    TS_RETURN_IF_ERROR(DescribeOutputs(session_->runtime(), config_, static_cast<int64_t>(run.size()), values, &part));
    for (size_t o = 0; o < part.size(); ++o) {
      OutputInfo& out = (*described)[o];
      if (out.data == nullptr) {  // the first run sets each output's row size (outputs have fixed dims)
        out = part[o];
        out.shape[0] = rows;
        out.bytes = part[o].row_bytes * static_cast<uint64_t>(rows);
        outputs_[o].resize(out.bytes);
        out.data = outputs_[o].data();
      } else if (part[o].row_bytes != out.row_bytes) {
        return Error(TRITONSERVER_ERROR_INTERNAL, "output '" + config_.outputs[o].name + "' changed its row size");
      }
      for (size_t k = 0; k < run.size(); ++k) {
        std::memcpy(outputs_[o].data() + static_cast<uint64_t>(run[k]) * out.row_bytes,
                    part[o].data + k * out.row_bytes, out.row_bytes);
      }
    }
  }
  input_data_ = whole;
  return nullptr;
}

// Drift never fails a request: a tensor the reference does not fit turns monitoring off, with a warning.
void Executor::Observe(const std::vector<OutputInfo>& outputs) {
  const DriftReference& reference = drift_->reference();
  std::pair<const char*, uint64_t> tensor = input_data_[drift_index_];
  if (reference.output) tensor = {outputs[drift_index_].data, outputs[drift_index_].bytes};
  std::string problem;
  try {
    problem = drift_->Observe(tensor.first, tensor.second);
  } catch (const std::exception& exc) {
    problem = exc.what();
  }
  if (problem.empty()) return;
  TS_LOG(TRITONSERVER_LOG_WARN, "drift monitoring disabled: " + problem);
  drift_.reset();
}

// Statistics for every request, then release them all (each has had its one response).
void Executor::Finish(std::vector<Pending>* pending) {
  for (Pending& one : *pending) {
    bool ok = one.error == nullptr;
    uint64_t end = one.exec_end_ns != 0 ? one.exec_end_ns : NowNs();
    uint64_t start = ok ? one.compute_start_ns : exec_start_ns_;
    LogIfError(TRITONBACKEND_ModelInstanceReportStatistics(instance_, one.request, ok, exec_start_ns_, start,
                                                           ok ? one.compute_end_ns : end, end),
               "reporting request statistics");
    if (!ok) TRITONSERVER_ErrorDelete(one.error);
    LogIfError(TRITONBACKEND_RequestRelease(one.request, kTritonRequestReleaseAll), "releasing a request");
  }
}

}  // namespace tritonstack
