// One model instance's execution of a batch handed over by Triton: validate each request, concatenate the
// compatible ones along the batch axis, one Run, split the outputs; a failed batch is re-run request by
// request so that only the bad request gets an error. Every request gets one response and its statistics.
#pragma once

#include <memory>
#include <vector>

#include "drift_monitor.h"
#include "io.h"
#include "session.h"

namespace tritonstack {

class Executor {
 public:
  Executor(const ModelConfig& config, std::unique_ptr<Session> session, TRITONBACKEND_ModelInstance* instance)
      : config_(config), session_(std::move(session)), instance_(instance), warmup_left_(config.warmup_executions) {}

  // Takes over `requests`: responds to and releases every one of them.
  void Execute(TRITONBACKEND_Request** requests, uint32_t count);
  // Feed the drift monitor the tensor at `index` of the config's inputs (or outputs) after every good Run.
  void SetDrift(std::unique_ptr<DriftMonitor> monitor, size_t index) { drift_ = std::move(monitor), drift_index_ = index; }

 private:
  void Validate(std::vector<Pending>* pending);
  std::vector<std::vector<Pending*>> Group(std::vector<Pending>* pending) const;
  void RunGroup(const std::vector<Pending*>& group);
  void RunAlone(const std::vector<Pending*>& group);
  TRITONSERVER_Error* RunAndSend(const std::vector<Pending*>& group);
  void Concatenate(const std::vector<Pending*>& group, std::vector<std::vector<int64_t>>* shapes);
  TRITONSERVER_Error* RunOnce(const std::vector<std::vector<int64_t>>& shapes, std::vector<OrtPtr<OrtValue>>* outputs);
  void TrimPadding(std::vector<std::vector<int64_t>>* shapes);
  std::vector<std::vector<int64_t>> Runs(const std::vector<std::vector<int64_t>>& shapes);
  TRITONSERVER_Error* RunEach(const std::vector<std::vector<int64_t>>& shapes,
                              const std::vector<std::vector<int64_t>>& runs, int64_t rows,
                              std::vector<OutputInfo>* described);
  void Finish(std::vector<Pending>* pending);
  void Observe(const std::vector<OutputInfo>& outputs);

  const ModelConfig& config_;
  std::unique_ptr<Session> session_;
  TRITONBACKEND_ModelInstance* instance_;
  uint64_t exec_start_ns_ = 0;
  std::vector<std::vector<char>> scratch_;  // concatenated inputs, reused across batches
  std::vector<std::vector<char>> trimmed_;  // inputs without their shared padding (trim_padding)
  std::vector<std::vector<char>> parts_;    // one run's rows of each input (RunEach)
  std::vector<std::vector<char>> outputs_;  // the runs' outputs, back in row order (RunEach)
  std::vector<int64_t> run_lengths_;  // each row's used length of the mask (trim_padding), once per batch
  std::vector<std::pair<const char*, uint64_t>> input_data_;  // the last Run's input bytes, config order
  std::unique_ptr<DriftMonitor> drift_;  // null: no drift reference, or monitoring turned off
  size_t drift_index_ = 0;
  int64_t warmup_left_;       // executions still to come of Triton's warm-up (model_warmup)
  bool warming_ = false;      // this execution is one of them: its rows are not traffic
};

}  // namespace tritonstack
