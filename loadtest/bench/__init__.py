"""`tritonstack bench`: the eight workloads W1-W8 measured in one run (see harness)."""
