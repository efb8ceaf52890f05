"""`tritonstack bench`: the workloads W1-W10 and C1 measured in one run (see harness; W9/W10 in runners)."""
