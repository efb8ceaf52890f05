"""Outside test 13d: the loadtest defects it found, each pinned down without a server."""

from tritonstack.loadtest.report import RunResult


def _result(**summary) -> RunResult:
    base = {"count": 10, "errors": 0, "throughput_rps": 5.0, "p50_ms": 1.0, "p90_ms": 1.0, "p99_ms": 1.0}
    return RunResult(name="open", scenario={}, summary={**base, **summary}, windows=[])


def test_the_console_says_when_the_open_loop_fell_behind(capsys):
    from tritonstack.loadtest.asyncio_runner import _note_unsent

    from tritonstack.cli.loadtest import _print_summary

    result = _result()
    _note_unsent(result, 989, 1.0)
    _print_summary(result, {})
    out = " ".join(capsys.readouterr().out.split())
    print(out)
    assert "note: the load generator fell behind its schedule: 989 scheduled requests were never sent" in out
    assert result.summary["unsent"] == 989


def test_a_request_deadline_too_far_out_for_grpc_is_refused():
    import pytest
    from tritonstack.loadtest.scenario import Scenario

    from tritonstack.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--timeout-s 1e\+10 is over 3600 s.*use 0.001 to 3600 s"):
        Scenario(kind="steady", timeout_s=1e10)
    assert Scenario(kind="steady", timeout_s=3600).timeout_s == 3600


def test_a_second_run_into_the_same_report_is_refused_while_the_first_runs(tmp_path):
    import pytest

    from tritonstack.cli.loadtest import _reserve_report
    from tritonstack.errors import ConfigError

    with _reserve_report(tmp_path / "same", "steady"):
        with pytest.raises(ConfigError, match="another loadtest is writing a steady report there right now"):
            with _reserve_report(tmp_path / "same", "steady"):
                pass
        with _reserve_report(tmp_path / "same", "open"):  # another scenario's report: its own name
            pass
    with _reserve_report(tmp_path / "same", "steady"):  # released once the first run ends
        pass
    assert not (tmp_path / "same").exists()  # nothing written into --out
