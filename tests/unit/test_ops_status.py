"""Drift status from a metrics page; thresholds equal to the alert rules; the drift-reference command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from tritonstack.ops.drift import DriftReference
from tritonstack.ops.status import ALERT_THRESHOLDS, drift_status

from tritonstack.cli import main

ROOT = Path(__file__).resolve().parents[2]
PAGE = """# HELP tritonstack_drift_psi_mean Mean per-feature PSI
# TYPE tritonstack_drift_psi_mean gauge
tritonstack_drift_psi_mean{model_instance="m_0_0",model="m",version="1"} 1.6
tritonstack_drift_embedding_mmd{model_instance="m_0_0",model="m",version="1"} 0.004
tritonstack_drift_window_rows{model_instance="m_0_0",model="m",version="1"} 512
tritonstack_drift_feature_psi{feature="3",model_instance="m_0_0",model="m",version="1"} 9
tritonstack_drift_psi_mean{model_instance="e_0_0",model="e",version="2"} 0.01
tritonstack_drift_embedding_mmd{model_instance="e_0_0",model="e",version="2"} 0.3
nv_inference_count{model="m",version="1"} 5
"""


def test_drift_status_groups_gauges_and_flags_alerts() -> None:
    rows = drift_status(PAGE)
    assert [(r.model, r.version) for r in rows] == [("e", "2"), ("m", "1")]
    e, m = rows
    assert m.scores == {"psi_mean": 1.6, "embedding_mmd": 0.004, "window_rows": 512}
    assert m.alerting == ["psi_mean"] and e.alerting == ["embedding_mmd"]


def test_thresholds_are_those_of_the_alert_rules() -> None:
    groups = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())["groups"]
    exprs = [r["expr"] for g in groups for r in g["rules"] if "tritonstack_drift_" in r.get("expr", "")]
    found = {m[0]: float(m[1]) for e in exprs for m in re.findall(r"tritonstack_drift_(\w+)\) > ([\d.]+)", e)}
    assert found == ALERT_THRESHOLDS


def test_drift_reference_command_writes_a_loadable_reference(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    np.save(tmp_path / "train.npy", np.random.default_rng(0).normal(size=(500, 6)))
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "model.onnx").write_bytes(b"a model file (a folder with none is refused)")
    main(["ops", "drift-reference", str(tmp_path / "2"), "--values", str(tmp_path / "train.npy"),
          "--tensor", "embedding", "--source", "output", "--window-rows", "200"])
    reference = DriftReference.load(tmp_path / "2" / "drift_reference.json")
    assert (reference.tensor, reference.source, reference.features, reference.window_rows) == (
        "embedding", "output", 6, 200)
    assert "unshifted windows score" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["ops", "drift-reference", str(tmp_path / "missing"), "--values", str(tmp_path / "train.npy"),
              "--tensor", "x"])


CANARY = """tritonstack_drift_psi_mean{model_instance="m_0_0",model="m",version="1"} 0.02
tritonstack_drift_window_rows{model_instance="m_0_0",model="m",version="1"} 300
nv_inference_count{model="m",version="1"} 300
nv_inference_count{model="m",version="2"} 40
nv_inference_count{model="plain",version="3"} 0
"""


def test_drift_status_lists_every_served_version_even_without_gauges() -> None:
    rows = drift_status(CANARY)
    assert [(r.model, r.version, r.instance) for r in rows] == [("m", "1", "m_0_0"), ("m", "2", ""),
                                                                  ("plain", "3", "")]
    assert rows[1].scores == {} and rows[1].alerting == []


def _drift_status_cli(tmp_path: Path, page: str, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "metrics").write_text(page)
    return subprocess.run([sys.executable, "-m", "tritonstack", "ops", "drift-status", *args,
                           "--metrics-url", (tmp_path / "metrics").as_uri()],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})


def test_drift_status_exits_1_while_an_alert_fires_and_0_when_calm(tmp_path: Path) -> None:
    calm = _drift_status_cli(tmp_path, CANARY)
    assert calm.returncode == 0, calm.stderr
    assert "no drift gauges" in calm.stdout and "│ 2 " in calm.stdout and "plain" in calm.stdout
    firing = _drift_status_cli(tmp_path, PAGE)
    assert firing.returncode == 1 and "Traceback" not in firing.stderr
    assert firing.stderr.strip() == "2 drift alert(s) firing: e v2 e_0_0 (embedding_mmd); m v1 m_0_0 (psi_mean)"
    as_json = _drift_status_cli(tmp_path, PAGE, "--json")
    assert as_json.returncode == 1
    assert {r["model"]: r["alerting"] for r in map(json.loads, as_json.stdout.splitlines())} == {
        "e": ["embedding_mmd"], "m": ["psi_mean"], }
    print(f"drift-status exit codes: calm {calm.returncode}, alerting {firing.returncode}")


def test_served_versions_that_are_not_ready_are_named_with_their_reason() -> None:
    """Outside tester's find: with every model UNAVAILABLE, `ops status --url` exited 0."""
    from tritonstack.ops.status import not_ready_served

    index = [{"name": "a", "version": "1", "state": "UNAVAILABLE", "reason": "failed to load\ndetail"},
             {"name": "a", "version": "2", "state": "READY"},
             {"name": "b", "version": "1", "state": "READY"},
             {"name": "c", "version": "", "state": "UNAVAILABLE", "reason": "unloaded"},
             {"name": "never_loaded"}]
    served = {("a", 1), ("a", 2), ("b", 1), ("b", 2), ("c", 1), ("never_loaded", 1)}
    problems = not_ready_served(index, served)
    print(problems)
    assert problems == ["a 1 (UNAVAILABLE: failed to load)", "c 1 (UNAVAILABLE: unloaded)"]


def test_a_served_version_not_loaded_yet_is_noted_not_a_fault() -> None:
    """Outsider 13c D10: a version converted while the server runs (a `latest` policy now names it) made
    `ops status` exit 1 "served versions not READY ... fix the model"; it only waits for a load."""
    from tritonstack.ops.status import not_loaded_yet, not_ready_served

    index = [{"name": "sk", "version": "1", "state": "READY"}]
    served = {("sk", 2)}
    assert not_ready_served(index, served) == [] and not_loaded_yet(index, served) == ["sk 2"]


WIDE = """tritonstack_drift_psi_mean{model_instance="digits_mlp_reference_0_0",model="digits_mlp_reference",version="12"} 1.6
tritonstack_drift_js_mean{model_instance="digits_mlp_reference_0_0",model="digits_mlp_reference",version="12"} 0.3
tritonstack_drift_embedding_mmd{model_instance="digits_mlp_reference_0_0",model="digits_mlp_reference",version="12"} 0.4
tritonstack_drift_window_rows{model_instance="digits_mlp_reference_0_0",model="digits_mlp_reference",version="12"} 1000
nv_inference_count{model="a_really_quite_long_model_name_for_the_table",version="3"} 0
"""


def test_drift_status_reads_whole_on_an_80_column_terminal(tmp_path: Path) -> None:
    """Issue 13: at COLUMNS=80 the alert column was cut ('psi_me…'); every cell must read whole."""
    (tmp_path / "metrics").write_text(WIDE)
    done = subprocess.run([sys.executable, "-m", "tritonstack", "ops", "drift-status",
                           "--metrics-url", (tmp_path / "metrics").as_uri()],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    print(f"widest drift-status line at COLUMNS=80: {max(map(len, lines))}")
    assert "…" not in done.stdout and max(map(len, lines)) <= 80
    row = next(line for line in lines if "digits_mlp_reference" in line)
    cells = [cell.strip() for cell in row.strip("│").split("│")]
    assert cells == ["digits_mlp_reference", "12", "0_0", "1000", "1.6000", "0.3000", "0.4000", "psi,mmd"]
    folded = "".join(line.split("│")[1].strip() for line in lines if line.startswith("│"))
    assert "a_really_quite_long_model_name_for_the_table" in folded  # folded over lines, not cut
    prose = " ".join(" ".join(line for line in lines if line[:1] not in "┏┃┡│└").split())
    assert "psi = psi_mean (alert > 0.1)" in prose and "mmd = embedding_mmd (alert > 0.05)" in prose
    assert "no drift gauges (no drift reference): a_really_quite_long_model_name_for_the_table v3" in prose


def test_the_state_column_keeps_a_short_reason() -> None:
    """Outsider 13c D11: `ops status` showed unloaded versions as UNAVAILABLE without "unloaded"."""
    from tritonstack.cli.ops import _state_cell

    assert _state_cell({"state": "UNAVAILABLE", "reason": "unloaded"}) == "UNAVAILABLE (unloaded)"
    assert _state_cell({"state": "READY"}) == "READY"
    assert _state_cell({"state": "UNAVAILABLE", "reason": "x" * 300}) == "UNAVAILABLE"  # in the failure line


def test_drift_status_json_writes_a_nan_score_as_null(capsys) -> None:  # noqa: ANN001
    """Round 8: a NaN gauge came out as `"embedding_mmd": NaN`, which is not JSON."""
    from tritonstack.ops.status import DriftRow

    from tritonstack.cli.ops import _print_drift_json

    _print_drift_json([DriftRow(model="m", version="1", instance="m_0", scores={"embedding_mmd": float("nan"),
                                                                              "psi_mean": 0.5})])
    line = json.loads(capsys.readouterr().out)
    assert line["scores"] == {"embedding_mmd": None, "psi_mean": 0.5}


NOT_SCORED = """tritonstack_drift_psi_mean{model_instance="m_0_1",model="m",version="1"} NaN
tritonstack_drift_embedding_mmd{model_instance="m_0_1",model="m",version="1"} NaN
tritonstack_drift_window_rows{model_instance="m_0_1",model="m",version="1"} 199
nv_inference_count{model="m",version="1"} 5
"""


def test_a_window_below_min_rows_is_not_scored_not_ok(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Outsider round 10: 199 shifted rows read psi 0, mmd 0 and `ok`. The gauges now read NaN until the
    window holds min_rows rows, and drift-status says so (no alert: exit 0)."""
    (row,) = drift_status(NOT_SCORED)
    assert not row.scored and row.alerting == []
    page = tmp_path / "metrics.txt"
    page.write_text(NOT_SCORED)
    assert main(["ops", "drift-status", "--metrics-url", page.as_uri()]) in (0, None)
    out = capsys.readouterr().out
    assert "too few rows" in out and "not scored yet" in out and " ok" not in out
    assert main(["ops", "drift-status", "--json", "--metrics-url", page.as_uri()]) in (0, None)
    line = json.loads(capsys.readouterr().out)
    assert line["scored"] is False and line["scores"]["psi_mean"] is None
    page.write_text(NOT_SCORED.replace('embedding_mmd{model_instance="m_0_1",model="m",version="1"} NaN',
                                       'embedding_mmd{model_instance="m_0_1",model="m",version="1"} +Inf'))
    with pytest.raises(SystemExit) as ended:  # an infinite score alerts, and the table says "inf" (was "-")
        main(["ops", "drift-status", "--metrics-url", page.as_uri()])
    assert ended.value.code == 1 and " inf " in capsys.readouterr().out


def test_drift_status_into_a_closed_pipe_exits_141_not_the_alert_code(tmp_path: Path) -> None:
    """Outsider round 10: `drift-status | head` exited 1 (rich's broken-pipe exit) with every row ok; 1
    means "an alert is firing" to cron. A reader that went away is now 141, as a shell reports SIGPIPE."""
    page = tmp_path / "metrics.txt"
    page.write_text("".join(f'tritonstack_drift_psi_mean{{model_instance="m{i}_0",model="m{i}",version="1"}} 0.01\n'
                            for i in range(2000)))
    status = subprocess.Popen([sys.executable, "-m", "tritonstack", "ops", "drift-status", "--metrics-url",
                               page.as_uri()], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert status.stdout is not None and status.stdout.readline()
    status.stdout.close()  # as `head -1` does
    _, err = status.communicate(timeout=60)
    assert status.returncode == 141, err.decode()
    assert b"Traceback" not in err


def test_drift_status_that_cannot_write_says_so_in_one_line_and_exits_74(tmp_path: Path) -> None:
    """Outsider round 11: `drift-status > /dev/full` printed a traceback and exited 1 (the alert code)."""
    page = tmp_path / "metrics.txt"
    page.write_text(PAGE)
    with open("/dev/full", "w") as full:  # noqa: PTH123
        done = subprocess.run([sys.executable, "-m", "tritonstack", "ops", "drift-status", "--metrics-url",
                               page.as_uri()], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert done.returncode == 74, done.stderr
    assert done.stderr.strip().splitlines() == ["error: cannot write: No space left on device; free some space "
                                                "(or send the output elsewhere) and run it again"]
