"""Load tests and benchmarks: Locust scenarios on the tritonstack client, `tritonstack bench`."""
