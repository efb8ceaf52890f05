"""W4 helpers: string requests for the MiniLM ensemble and its in-process twin (tokenizer + ORT).

    rows = string_rows(config, texts)                       # [{"TEXT": array([[b"..."]])}, ...]
    best = inprocess_texts_per_s(bench, "minilm", texts)    # tokenize + encoder, best batch size

The in-process side loads the same files the server loads (the tokenizer folder of
`minilm_tokenizer`, the ONNX file of the ensemble's encoder step) and runs on the server's CPUs.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
from tritonstack.loadtest.bench.inprocess import ort_session, rows_per_s
from tritonstack.loadtest.pinning import pinned_thread

from tritonstack.errors import LoadTestError

__all__ = ["ensemble_steps", "inprocess_texts_per_s", "string_rows"]


def string_rows(config: Any, texts: list[str]) -> list[dict[str, np.ndarray]]:
    """One request per text for a model whose single input is a STRING tensor of dims [1]."""
    if len(config.input) != 1:
        raise LoadTestError(
            f"model {config.name!r} has {len(config.input)} inputs; W4 expects one TEXT input"
        )
    name = config.input[0].name
    return [{name: np.array([[t.encode()]], dtype=np.object_)} for t in texts]


def ensemble_steps(config: Any) -> tuple[str, str]:
    """(tokenizer model, encoder model) of a two-step ensemble config."""
    steps = [s.model_name for s in config.ensemble_scheduling.step]
    if len(steps) != 2:
        raise LoadTestError(f"ensemble {config.name!r} has steps {steps}; W4 expects tokenizer -> encoder")
    return steps[0], steps[1]


def _latest_version(bench: Any, model: str) -> Any:
    folders = sorted(
        (p for p in (bench.repository / model).iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
    )
    if not folders:
        raise LoadTestError(f"model {model!r} has no version folder")
    return folders[-1]


def inprocess_texts_per_s(bench: Any, ensemble: str, texts: list[str]) -> dict[str, Any]:
    """Texts/s of tokenize + ORT encoder in this thread on the server's CPUs, at its best batch size
    (each size runs through all `texts` in consecutive batches)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import AutoTokenizer

    tokenizer_model, encoder = ensemble_steps(bench.config(ensemble))
    tok = AutoTokenizer.from_pretrained(str(_latest_version(bench, tokenizer_model)))
    sizes = (1, 8) if bench.options.quick else (1, 4, 8, 16, 32)
    by_batch = {}
    with pinned_thread(bench.split.server):
        session = ort_session(bench.onnx_path(encoder), len(bench.split.server))
        for size in sizes:
            # every text in turn, `size` at a time, as the served side gets them (the first `size`
            # texts alone would set the padded length of every batch)
            batches = itertools.cycle([[texts[(start + i) % len(texts)] for i in range(size)]
                                       for start in range(0, len(texts), size)])

            def run(batches: Iterator[list[str]] = batches) -> Any:
                enc = tok(next(batches), padding=True, truncation=True, max_length=256, return_tensors="np")
                feeds = {
                    "input_ids": enc["input_ids"].astype(np.int64),
                    "attention_mask": enc["attention_mask"].astype(np.int64),
                }
                return session.run(None, feeds)

            by_batch[size] = rows_per_s(run, size, bench.options.duration_s / 2)
    best = max(by_batch, key=by_batch.__getitem__)
    return {
        "best_batch": best,
        "rows_per_s": by_batch[best],
        "encoder": encoder,
        "tokenizer": tokenizer_model,
        "by_batch": {str(k): round(v, 1) for k, v in by_batch.items()},
    }
