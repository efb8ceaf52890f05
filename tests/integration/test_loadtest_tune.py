"""`tune` on a copy of the session repository: two points, winner written, old config kept."""

import json
import shutil

from tritonstack.loadtest.tune import TuneOptions, tune

from tritonstack.model_config import read_config


def test_tune_writes_the_winner_and_keeps_the_old_config(repository, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(repository, repo)
    before = (repo / "digits_mlp" / "config.pbtxt").read_text()
    outcome = tune(
        TuneOptions(
            repository=repo,
            model="digits_mlp",
            p99_ms=10_000,
            max_batch_sizes=(16,),
            max_queue_delays_us=(0, 1000),
            instance_counts=(1,),
            concurrency=8,
            duration_s=0.7,
            warmup_s=0.2,
            apply=True,
        )
    )
    print(json.dumps(outcome.as_dict(), indent=1))
    assert len(outcome.points) == 2 and all(p["count"] > 0 and p["errors"] == 0 for p in outcome.points)
    assert outcome.best is not None
    tuned = read_config(repo / "digits_mlp" / "configs" / "tuned.pbtxt")
    assert tuned.max_batch_size == 16
    assert tuned.dynamic_batching.max_queue_delay_microseconds == outcome.best["max_queue_delay_us"]
    assert (repo / "digits_mlp" / "config.pbtxt").read_text() != before  # --apply
    assert open(outcome.written["previous"]).read() == before  # ... keeping the old one
