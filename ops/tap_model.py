"""Triton Python-backend model `<model>_drift`: a drift tap, copied into the repository as model.py.

Not imported by tritonstack: `tritonstack.ops.drift_tap.write_drift_tap` copies this file (as
`model.py`) and `ops/drift.py` (as `tritonstack_drift.py`) into the tap's version folder, so the tap
runs on any Triton with the Python backend and numpy - the NGC image included, where the monitored
model runs on the native onnxruntime / tensorrt backend and the ONNX runner's drift hook does not.
An ensemble `<model>_monitored` sends each request to the model and to this tap; the tap keeps the
sliding window and publishes the same `tritonstack_drift_*` gauges, labelled with the monitored model.
"""

import json
import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tritonstack_drift import REFERENCE_FILE, DriftMonitor, DriftReference  # noqa: E402


class TritonPythonModel:
    """Observes the monitored tensor of every request; answers with the window's row count."""

    def initialize(self, args):
        """Load the reference from this version folder and create the gauges."""
        config = json.loads(args["model_config"])
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        reference = DriftReference.load(os.path.join(version_dir, REFERENCE_FILE))
        monitored = config["parameters"]["monitored_model"]["string_value"]
        self.families = {}
        labels = {"model": monitored, "version": args["model_version"],
                  "model_instance": args["model_instance_name"]}
        self.monitor = DriftMonitor(reference, self._gauge, labels, trailing=True)
        self.output = config["output"][0]["name"]

    def _gauge(self, name, description, labels):
        if name not in self.families:
            self.families[name] = pb_utils.MetricFamily(
                name=name, description=description, kind=pb_utils.MetricFamily.GAUGE)
        return self.families[name].Metric(labels=labels)

    def execute(self, requests):
        """Add every request's rows to the window; a failure here never fails the ensemble's answer."""
        arrays = [pb_utils.get_input_tensor_by_name(r, self.monitor.tensor).as_numpy() for r in requests]
        try:
            self.monitor.observe(np.concatenate(arrays, axis=0))
        except Exception as exc:  # noqa: BLE001
            pb_utils.Logger.log_warn(f"drift tap: {exc!r}")
        rows = float(self.monitor.window.count)
        return [pb_utils.InferenceResponse([pb_utils.Tensor(
            self.output, np.full((len(a), 1), rows, np.float32))]) for a in arrays]

    def finalize(self):
        """Stop the drift publishing thread."""
        self.monitor.close()
