"""Triton statistics diffed version by version: a version switch mid-run never gives negative figures."""

from tritonstack.loadtest.server_stats import ServerStatsPoller, interval, snapshot


def _stats(**versions):
    """Triton's JSON statistics for model m: version -> (requests, executions, queue_ns)."""
    return {
        "model_stats": [
            {
                "name": "m",
                "version": v,
                "inference_count": n,
                "execution_count": e,
                "inference_stats": {
                    "success": {"count": n, "ns": 0},
                    "queue": {"count": n, "ns": q},
                    "compute_infer": {"count": e, "ns": 100_000 * e},
                },
            }
            for v, (n, e, q) in versions.items()
        ]
    }


def test_a_version_switch_is_never_negative():
    # v1 served 5000 requests, then v2 was loaded and v1 unloaded (its counters vanish):
    before = snapshot(_stats(**{"1": (5000, 1000, 5_000_000_000)}), "m", 0.0)
    after = snapshot(_stats(**{"2": (300, 100, 30_000_000)}), "m", 1.0)
    row = interval(before, after)
    print(row)
    assert row["requests"] == 300 and row["avg_batch"] == 3.0 and row["avg_queue_us"] == 100.0
    assert all(v >= 0 for v in row.values())
    # same version reloaded: its counters restart from zero, the interval counts from zero
    reloaded = snapshot(_stats(**{"2": (50, 10, 5_000_000)}), "m", 2.0)
    assert interval(after, reloaded)["requests"] == 50


def test_total_keeps_every_version_and_timeline_spans_the_run():
    poller = ServerStatsPoller("unused:1", "m")
    poller.snapshots = [
        snapshot(_stats(**{"1": (0, 0, 0)}), "m", 9.0),  # before the run (origin 10)
        snapshot(_stats(**{"1": (100, 50, 0)}), "m", 11.0),
        snapshot(_stats(**{"1": (200, 100, 0), "2": (10, 5, 0)}), "m", 12.0),
        snapshot(_stats(**{"2": (60, 30, 0)}), "m", 13.0),  # v1 gone
        snapshot(_stats(**{"2": (60, 30, 0)}), "m", 16.0),  # the final poll, long after the end
    ]
    total = poller.total()
    assert total["requests"] == 100 + 100 + 10 + 50 and total["avg_batch"] == 2.0
    timeline = poller.timeline(10.0, until_s=3.0)
    print(timeline)
    assert [r["t_s"] for r in timeline] == [1.0, 2.0, 3.0]  # 9->11 (middle 0) to 12->13; not 13->16
    assert all(r[k] >= 0 for r in timeline for k in r)
