"""`tune` against the real server: the README command end to end, a winner only when it beats the
current config (twice), a candidate that fails to load skipped while the model keeps serving, and the
repository left exactly as it was when nothing wins."""

import json
import os
import subprocess
import sys

from tritonstack.loadtest import tune as tune_module
from tritonstack.loadtest.tune import TuneOptions, beats, tune

from tests.integration.conftest import tree_digest
from tritonstack.model_config import read_config, write_config


def test_readme_tune_command_end_to_end(repo_copy, tmp_path):
    """`tritonstack tune digits_mlp --p99-ms 5`, with short points; the grid steps the instance count
    1 -> 2 at the same batch settings, where tritonserver itself has aborted (see tune_server)."""
    before = tree_digest(repo_copy)
    argv = [
        sys.executable,
        "-m",
        "tritonstack",
        "tune",
        "digits_mlp",
        "--p99-ms",
        "5",
        "--repository",
        str(repo_copy),
        "--duration",
        "0.5",
        "--max-batch",
        "8,64",
        "--delay-us",
        "0",
        "--instances",
        "1,2",
        "--concurrency",
        "8",
        "--out",
        str(tmp_path / "reports"),
    ]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "COLUMNS": "120"},
    )
    print(done.stdout[-3000:], done.stderr[-2000:])
    assert done.returncode == 0 and "Traceback" not in done.stderr
    outcome = json.loads((tmp_path / "reports" / "digits_mlp.json").read_text())
    tried = outcome["points"] + outcome["skipped"]
    assert len(tried) == 4 and all(p["count"] > 0 for p in outcome["points"])
    for skip in outcome["skipped"]:  # a candidate that crashed the server: said why, server restarted
        assert skip["reason"] and "\n" not in skip["reason"] and outcome["server_restarts"] >= 1
        print(f"skipped {skip}, {outcome['server_restarts']} restart(s)")
    if outcome["best"] is None:  # nothing beat the current config: the repository is exactly as before
        assert tree_digest(repo_copy) == before and "nothing written" in outcome["decision"]
        return
    again = outcome["confirmation"]  # a winner beat the current config on the target, measured twice
    assert beats(outcome["best"], outcome["baseline"], 5, 0.05) and beats(
        again["best"], again["baseline"], 5, 0.05
    )
    after = tree_digest(repo_copy)
    assert after["digits_mlp/config.pbtxt"] == before["digits_mlp/config.pbtxt"]  # written aside, not applied
    assert set(tree_digest(repo_copy)) - set(before) == {"digits_mlp/configs/tuned.pbtxt"}


def test_a_slower_current_config_is_replaced_and_kept(repo_copy):
    """A current config with a 100 ms queue delay misses a 50 ms p99 budget at concurrency 1; the
    candidate without delay fits it, wins twice, and --apply makes it config.pbtxt (old one kept)."""
    config = repo_copy / "digits_mlp" / "config.pbtxt"
    slow = read_config(config)
    slow.dynamic_batching.max_queue_delay_microseconds = 100_000
    write_config(slow, config)
    before = config.read_text()
    outcome = tune(
        TuneOptions(
            repository=repo_copy,
            model="digits_mlp",
            p99_ms=50,
            max_batch_sizes=(16,),
            max_queue_delays_us=(0,),
            instance_counts=(1,),
            concurrency=1,
            duration_s=1.0,
            warmup_s=0.2,
            apply=True,
        )
    )
    print(json.dumps(outcome.as_dict(), indent=1))
    assert outcome.baseline["p99_ms"] > 50 and outcome.best is not None, outcome.decision
    assert outcome.confirmation["baseline"]["p99_ms"] > 50 and outcome.confirmation["best"]["p99_ms"] <= 50
    tuned = read_config(repo_copy / "digits_mlp" / "configs" / "tuned.pbtxt")
    assert (tuned.max_batch_size, tuned.dynamic_batching.max_queue_delay_microseconds) == (16, 0)
    assert "tritonstack_tune_load" not in config.read_text()  # the reload stamp never reaches a file
    assert config.read_text() != before and open(outcome.written["previous"]).read() == before


def test_a_candidate_that_fails_to_load_is_skipped_and_the_model_still_serves(repo_copy, monkeypatch):
    real = tune_module.with_candidate

    def broken_for_777(config, candidate):  # a config Triton refuses at load time
        new = real(config, candidate)
        if candidate.max_queue_delay_us == 777:
            new.dynamic_batching.preferred_batch_size.append(candidate.max_batch_size * 2)
        return new

    monkeypatch.setattr(tune_module, "with_candidate", broken_for_777)
    before = tree_digest(repo_copy)
    skipped = []
    outcome = tune(
        TuneOptions(
            repository=repo_copy,
            model="digits_mlp",
            p99_ms=10_000,
            max_batch_sizes=(16,),
            max_queue_delays_us=(777, 0),
            instance_counts=(1,),
            concurrency=4,
            duration_s=0.5,
            warmup_s=0.2,
            min_gain=0.5,
        ),
        on_skip=lambda c, reason: skipped.append(reason),
    )
    print(json.dumps(outcome.as_dict(), indent=1))
    assert len(outcome.skipped) == 1 and outcome.skipped[0]["max_queue_delay_us"] == 777
    assert "preferred" in skipped[0] and "\n" not in skipped[0]
    (after_skip,) = outcome.points  # measured after the failed load: the model kept serving
    assert after_skip["max_queue_delay_us"] == 0 and after_skip["count"] > 0 and after_skip["errors"] == 0
    assert outcome.server_restarts == 0
    if not outcome.written:
        assert tree_digest(repo_copy) == before
