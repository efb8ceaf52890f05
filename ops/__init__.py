"""Day-two operations: drift detection, model versions and canary, drift status.

    from tritonstack.ops.drift import reference_from_training      # convert time
    from tritonstack.ops.versions import TritonControl, VersionManager
    from tritonstack.ops.status import drift_status

- `drift`: reference statistics of training values saved next to the model; PSI / KL / JS per
  feature and embedding MMD over a sliding window, published by the ONNX runner as Triton custom
  metrics (`tritonstack_drift_*`). Pure numpy: imported inside the Triton Python stub.
- `drift_tap`: the same scores for models on native backends (NGC image): a Python-backend tap model
  and an ensemble `<model>_monitored` that feeds it (`tritonstack ops drift-tap`).
- `versions`: add / promote / canary / roll back versions over Triton's model-control API
  (`tritonstack versions ...`).
- `status`: the drift gauges of a metrics page, against the alert thresholds (`tritonstack ops ...`).

Deployment files (compose, Prometheus rules, Grafana, Kubernetes) live in deploy/ and at the top level.
"""
