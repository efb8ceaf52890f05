"""Day-two operations: drift detection, model versions and canary, structured logs.

    from tritonstack.ops import drift
"""
