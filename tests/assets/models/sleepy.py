"""Test model: echoes input `x` as `y` after sleeping `delay_ms` (a config parameter) per execute().

Used by the fault-matrix tests to fill queues, expire queue timeouts and outlive client deadlines.
"""

import json
import time

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """Echo with a fixed service time."""

    def initialize(self, args):
        """Read the delay from the config parameters."""
        config = json.loads(args["model_config"])
        self.delay_s = float(config["parameters"]["delay_ms"]["string_value"]) / 1000

    def execute(self, requests):
        """Sleep once per batch, then echo every request."""
        time.sleep(self.delay_s)
        return [
            pb_utils.InferenceResponse([pb_utils.Tensor("y", pb_utils.get_input_tensor_by_name(r, "x").as_numpy())])
            for r in requests
        ]
