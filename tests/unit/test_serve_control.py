"""The gRPC control path's pieces without a server: statistics shape, headers, URL check."""

from __future__ import annotations

import pytest
from tritonclient.grpc import service_pb2
from tritonstack.ops.status import cache_counts
from tritonstack.ops.versions import TritonControl
from tritonstack.serve.control import _as_dict, grpc_key_headers, normalise_statistics

from tritonstack.errors import ConfigError


def _statistics() -> service_pb2.ModelStatisticsResponse:
    answer = service_pb2.ModelStatisticsResponse()
    entry = answer.model_stats.add(name="digits_cached", version="1", inference_count=50, execution_count=2)
    entry.inference_stats.cache_hit.count = 49
    entry.inference_stats.cache_miss.count = 1
    entry.batch_stats.add(batch_size=8).compute_infer.count = 2
    answer.model_stats.add(name="12345", version="2")  # a name of digits stays a name
    return answer


def test_grpc_statistics_are_shaped_like_http_ones() -> None:
    stats = normalise_statistics(_as_dict(_statistics(), defaults=True))
    first, second = stats["model_stats"]
    assert first["inference_count"] == 50 and first["execution_count"] == 2
    assert first["inference_stats"]["cache_hit"] == {"count": 49, "ns": 0}  # zero counters present
    assert first["batch_stats"][0]["batch_size"] == 8 and first["batch_stats"][0]["compute_infer"]["count"] == 2
    assert (second["name"], second["version"], second["inference_count"]) == ("12345", "2", 0)
    assert cache_counts(stats["model_stats"]) == {("digits_cached", "1"): (49, 1), ("12345", "2"): (0, 0)}


def test_the_admin_key_goes_as_triton_prefixed_grpc_metadata() -> None:
    assert grpc_key_headers("k") == {"triton-grpc-protocol-tritonstack-admin-key": "k"}
    assert grpc_key_headers(None) == {}


def test_an_http_url_is_refused_in_one_line_naming_the_grpc_form() -> None:
    with pytest.raises(ConfigError, match="host:port"):
        TritonControl("http://127.0.0.1:8000")


@pytest.mark.parametrize("url", ["127.0.0.1:99999", "127.0.0.1:0", "127.0.0.1", "127.0.0.1:80x", ":8001"])
def test_a_url_that_is_not_host_and_a_valid_port_is_refused_before_any_call(url: str) -> None:
    with pytest.raises(ConfigError, match="port from 1 to 65535"):
        TritonControl(url)


def test_versions_list_refuses_an_out_of_range_port_in_one_line_exit_2(tmp_path) -> None:  # noqa: ANN001
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "tritonstack", "versions", "list", "digits_mlp", "--url",
                          "127.0.0.1:99999", "--repository", str(tmp_path)], capture_output=True, text=True,
                         timeout=60)
    print(run.stderr.strip())
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1
    assert "99999" in run.stderr and "34463" not in run.stderr


def test_loadtest_and_tune_refuse_a_bad_url_or_concurrency_in_one_line() -> None:
    """Outsider: `loadtest --url ''` gave a traceback, `--url 127.0.0.1:99999` load-tested port 34463, and
    `tune --concurrency 100000000` ran out of memory and ignored SIGTERM."""
    import subprocess
    import sys

    for argv in (["loadtest", "steady", "--url", "", "--duration", "1"],
                 ["loadtest", "steady", "--url", "127.0.0.1:99999", "--duration", "1"],
                 ["tune", "digits_mlp", "--p99-ms", "5", "--concurrency", "100000000"]):
        done = subprocess.run([sys.executable, "-m", "tritonstack", *argv], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 2 and "Traceback" not in done.stderr, (argv, done.stderr)
