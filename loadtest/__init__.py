"""Load tests and benchmarks for Triton: Locust scenarios on the tritonstack client, `tritonstack bench`.

    tritonstack loadtest open --url 127.0.0.1:8001 --rate 500      # report: JSON + CSV + HTML
    tritonstack bench --json reports/bench.json                    # W1-W8, ratios with goals
    tritonstack tune digits_mlp --p99-ms 5                         # batching/instances sweep

Modules: `stats` (samples; percentiles that count failures), `schedule` (open-loop arrivals),
`generator` (asyncio closed/open loop, one generator for every target), `targets` (Triton gRPC,
our client, HTTP baseline), `server_stats` (Triton statistics: queue, compute, batch size),
`report` + `svg` (JSON/CSV/self-contained HTML), `scenario`, `locust_user`, `shapes`,
`locustfile`, `locust_runner` (Locust, local or distributed), `asyncio_runner`, `perf_analyzer`
(referee), `pinning` (core split), `baseline_app` + `baseline` (FastAPI + PyTorch seed server),
`bench/` (the W1-W8 harness), `tune` + `tune_server` (sweep on a server serving only the model),
`inputs` (random rows, `--shape`, `--inputs samples.npz`), `preflight` (model, version and inputs
checked before any load). Locust (gevent) is imported only by `locust_user`.
"""
