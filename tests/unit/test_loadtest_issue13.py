"""Issue 13 (outside tester): loadtest options refused in one line (exit 2) before any load or server
start, and the wording of the messages and the report's CPU line."""

import pytest

from tests.unit.test_loadtest_guards import _cli, _one_line
from tritonstack.cli.finite import finite
from tritonstack.errors import ConfigError


# -- 2: an unbounded finite option ends its sentence --------------------------------------------------
def test_an_unbounded_option_suggests_a_number_instead_of_ending_on_use_one():
    parse = finite("--x", example=10)["parser"]
    with pytest.raises(ConfigError, match=r"--x nan is not a finite number; use one such as 10$"):
        parse("nan")
    with pytest.raises(ConfigError, match=r"--x 'abc' is not a number; use one such as 10$"):
        parse("abc")


def test_timeout_s_nan_on_the_command_line_finishes_the_sentence(tmp_path):
    done = _cli("loadtest", "steady", "--url", "127.0.0.1:1", "--timeout-s", "nan", "--out", "r", cwd=tmp_path)
    line = _one_line(done)
    print(line)
    assert done.returncode == 2 and line.endswith("--timeout-s nan is not a finite number; use one such as 10")
    assert not (tmp_path / "r").exists()


# -- 1: --out that cannot be a folder: one line, exit 2, before any load or server start ---------------
@pytest.mark.parametrize("case", ["proc", "file", "under_file"])
def test_an_out_folder_that_cannot_be_made_is_one_line_and_exit_2(tmp_path, case):
    (tmp_path / "afile").write_text("x")
    out = {"proc": "/proc/nope", "file": "afile", "under_file": "afile/sub"}[case]
    # port 1 has no server: the --out check must come first, or the line would be about the server
    done = _cli("loadtest", "steady", "--url", "127.0.0.1:1", "--out", out, cwd=tmp_path)
    line = _one_line(done)
    print(line)
    assert done.returncode == 2 and f"--out {out}: cannot create the report folder: " in line
    assert (tmp_path / "afile").read_text() == "x"


def test_the_out_check_leaves_no_folder_behind(tmp_path):
    from tritonstack.cli.loadtest import check_out

    check_out(tmp_path / "a" / "b" / "c")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "kept").mkdir()
    check_out(tmp_path / "kept")
    assert (tmp_path / "kept").is_dir()


# -- 6: a URL with a scheme ----------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["http://127.0.0.1:1", "grpc://127.0.0.1:1/"])
def test_a_url_with_a_scheme_says_url_takes_host_port(tmp_path, url):
    done = _cli("loadtest", "steady", "--url", url, "--out", "r", cwd=tmp_path)
    line = _one_line(done)
    print(line)
    assert done.returncode == 2 and "--url takes host:port for gRPC (no http://), e.g. 127.0.0.1:1" in line
    assert not (tmp_path / "r").exists()


# -- 5: a spike that cannot happen is refused before any load --------------------------------------------
@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--spike-at", "5", "--duration", "2"], "--spike-at 5 is not before --duration 2"),
        (["--spike-at", "2", "--duration", "2"], "--spike-at 2 is not before --duration 2"),
        (["--spike-at", "1", "--spike-s", "2", "--duration", "2"], "ends at 3 s, after --duration 2"),
        (["--users", "8", "--spike-users", "8"], "--spike-users 8 is not above --users 8"),
    ],
    ids=["after", "at", "overruns", "no_more_users"],
)
def test_a_spike_that_cannot_happen_is_one_line_and_exit_2(tmp_path, extra, needle):
    # port 1 has no server: the check must come before asking one
    done = _cli("loadtest", "spike", "--url", "127.0.0.1:1", *extra, "--out", "r", cwd=tmp_path)
    line = _one_line(done)
    print(line)
    assert done.returncode == 2 and needle in line
    assert not (tmp_path / "r").exists()


def test_a_spike_that_fits_is_accepted():
    from tritonstack.loadtest.scenario import Scenario

    spike = Scenario(kind="spike", users=1, spike_users=4, spike_at_s=0.5, spike_s=1.5, duration_s=2)
    assert spike.spike_at_s + spike.spike_s == spike.duration_s
    Scenario(kind="steady", spike_at_s=50)  # spike options do not matter for other kinds


# -- 4: a ramp stays within --users and --duration -------------------------------------------------------
def test_a_ramp_never_exceeds_users_nor_runs_past_duration():
    from tritonstack.loadtest.scenario import ramp_users_at

    plan = {"users": 10, "step_users": 4, "step_s": 2.0, "duration_s": 7.0}  # last step capped and cut
    got = [ramp_users_at(t, **plan) for t in (0, 2, 4, 6, 6.99, 7)]
    print(got)
    assert got == [4, 8, 10, 10, 10, None]
    assert ramp_users_at(5, users=None, step_users=4, step_s=2, duration_s=7) == 12  # old reports: no cap


def test_the_ramp_chart_plans_the_capped_ramp():
    from tritonstack.loadtest.report import RunResult, _planned_users

    sc = {"kind": "ramp", "users": 6, "step_users": 4, "step_s": 1.0, "duration_s": 3.0}
    result = RunResult(name="ramp", scenario=sc, summary={}, windows=[])
    assert _planned_users(result, [0.5, 1.5, 2.5, 3.0]) == [4, 6, 6, 6]


def test_a_step_longer_than_the_run_is_cut_at_duration():
    """The tester's case (--users 4 --step-users 8 --step 5 --duration 1) ran 8 users for 5.05 s."""
    from tritonstack.loadtest.scenario import Scenario, ramp_users_at

    sc = Scenario(kind="ramp", users=4, step_users=8, step_s=5, duration_s=1)
    plan = {"users": sc.users, "step_users": sc.step_users, "step_s": sc.step_s, "duration_s": sc.duration_s}
    assert [ramp_users_at(t, **plan) for t in (0, 0.99, 1.0, 5.05)] == [4, 4, None, None]


def test_a_ramp_report_shows_its_user_ceiling():
    from tritonstack.loadtest.scenario import Scenario

    assert Scenario(kind="ramp", users=12).describe()["users"] == 12
