"""Reference conversions served by the real embedded Triton server: parity with training time.

One repository (digits_cnn, tabular_mlp, wine_forest, minilm; FP32 and gated INT8) is built and
served once for this module.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

MODELS = ["digits_cnn", "tabular_mlp", "wine_forest", "minilm"]
TEXTS = [
    "hello world",
    "Triton serves the encoder behind a tokenizer step, so clients send raw strings.",
    "A much longer sentence, with punctuation; numbers like 3.14159 and 42; and some unusual words "
    "such as sesquipedalian, to make the padding and the attention mask matter for mean pooling.",
    "Ünïcödé text and emoji 🚀 still tokenize.",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from tritonstack.convert.reference import build_all

    root = tmp_path_factory.mktemp("convert_served")
    summaries = build_all(root / "model_repository", root / "build", MODELS)
    return {"repository": root / "model_repository", "workdir": root / "build", "summaries": summaries}


@pytest.fixture(scope="module")
def grpc(built: dict) -> Iterator[grpcclient.InferenceServerClient]:
    from tritonstack.serve import EmbeddedServer, ServerConfig

    with EmbeddedServer(ServerConfig(repository=built["repository"], ort_threads=1)) as server:
        client = grpcclient.InferenceServerClient(server.grpc_url)
        yield client
        client.close()


def _infer(client: grpcclient.InferenceServerClient, model: str, name: str, array: np.ndarray,
           output: str) -> np.ndarray:
    if len(array) > 16:  # the MiniLM models' batch limit: send in chunks
        return np.concatenate([_infer(client, model, name, array[i:i + 16], output)
                               for i in range(0, len(array), 16)])
    dtype = "BYTES" if array.dtype == object else "FP32"
    tensor = grpcclient.InferInput(name, list(array.shape), dtype)
    tensor.set_data_from_numpy(array)
    return client.infer(model, [tensor]).as_numpy(output)


def _texts(texts: list[str]) -> np.ndarray:
    return np.array([[t.encode("utf-8")] for t in texts], dtype=object)


def test_minilm_ensemble_equals_sentence_transformers(grpc) -> None:  # noqa: ANN001
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from tritonstack.convert.reference.minilm_encoder import model_dir

    expected = SentenceTransformer(str(model_dir()), device="cpu").encode(TEXTS, normalize_embeddings=True)
    served = _infer(grpc, "minilm", "TEXT", _texts(TEXTS), "embedding")
    one_by_one = np.concatenate([_infer(grpc, "minilm", "TEXT", _texts([t]), "embedding") for t in TEXTS])
    cosine = (served * expected).sum(1) / np.linalg.norm(served, axis=1) / np.linalg.norm(expected, axis=1)
    print(f"minilm served vs sentence-transformers cosine: {cosine.round(6)}")
    assert served.shape == (len(TEXTS), 384)
    assert cosine.min() >= 0.9999
    np.testing.assert_allclose(one_by_one, served, atol=1e-5)  # padding in a batch changes nothing


def test_minilm_int8_is_served_or_rejected_with_its_figure(grpc, built: dict) -> None:  # noqa: ANN001
    summary = built["summaries"]["minilm"]
    gate = summary["variants"]["minilm_int8"]["gate"]
    if not gate["passed"]:
        assert f"{gate['after']:.4f}" in summary["rejected"]["minilm_int8"]
        pytest.skip(f"minilm_int8 rejected by the gate: {summary['rejected']['minilm_int8']}")
    from tritonstack.convert.reference.corpus import sentences

    texts = sentences(48, part=1)
    fp32 = _infer(grpc, "minilm", "TEXT", _texts(texts), "embedding")
    int8 = _infer(grpc, "minilm_int8", "TEXT", _texts(texts), "embedding")
    cosine = (fp32 * int8).sum(1)
    print(f"minilm_int8 served: mean cosine to FP32 {cosine.mean():.4f} (gate measured {gate['after']:.4f})")
    assert cosine.mean() >= 0.99


def test_tabular_raw_features_equal_training_time_pipeline(grpc, built: dict) -> None:  # noqa: ANN001
    from tritonstack.convert.reference.tabular import tabular_split, training_time_predict

    x_test = tabular_split()[2]
    served = _infer(grpc, "tabular_mlp", "features", x_test, "probabilities")
    expected = training_time_predict(built["workdir"], x_test)
    print(f"tabular_mlp served vs scaler+MLP in training: max abs {np.abs(served - expected).max():.2e}")
    np.testing.assert_allclose(served, expected, atol=1e-5)
    np.testing.assert_allclose(served.sum(1), 1.0, atol=1e-5)


def test_digits_cnn_int8_served_within_one_point(grpc, built: dict) -> None:  # noqa: ANN001
    from tritonstack.convert.reference.digits_cnn import digits_images

    _, x_test, _, y_test = digits_images()
    accuracy = {}
    for model in ("digits_cnn", "digits_cnn_int8"):  # max_batch_size is 256
        served = np.concatenate([_infer(grpc, model, "image", x_test[i:i + 200], "probabilities")
                                 for i in range(0, len(x_test), 200)])
        accuracy[model] = float((served.argmax(1) == y_test).mean())
    print(f"digits_cnn served top-1: {accuracy}")
    assert accuracy["digits_cnn"] >= 0.95
    assert accuracy["digits_cnn"] - accuracy["digits_cnn_int8"] <= 0.01
    manifest = json.loads((built["repository"] / "digits_cnn_int8" / "1" / "manifest.json").read_text())
    assert manifest["accuracy"]["after"] == pytest.approx(accuracy["digits_cnn_int8"])
    assert manifest["calibration"] == {"cache_reused": False, "format": "QDQ", "method": "minmax",
                                       "per_channel": True, "samples": 64}


def test_wine_forest_served_equals_scikit_learn(grpc, built: dict) -> None:  # noqa: ANN001
    import joblib
    from tritonstack.convert.reference.classic import wine_split

    _, x_test, _, y_test = wine_split()
    pipeline = joblib.load(built["workdir"] / "wine_forest" / "model.joblib")
    served = _infer(grpc, "wine_forest", "features", x_test, "probabilities")
    assert (served.argmax(1) == pipeline.predict(x_test)).all()
    assert np.abs(served - pipeline.predict_proba(x_test)).max() <= 0.021  # one tree of 50 at most


def test_rebuild_reuses_the_calibration_and_adds_a_version(built: dict) -> None:
    from tritonstack.convert.reference import build_all

    summary = build_all(built["repository"], built["workdir"], ["digits_cnn"])["digits_cnn"]
    assert summary["version"] == 2
    manifest = json.loads((built["repository"] / "digits_cnn_int8" / "2" / "manifest.json").read_text())
    assert manifest["calibration"]["cache_reused"] is True and manifest["calibration"]["samples"] == 64
    assert (built["repository"] / "digits_cnn_int8" / "1").is_dir()


def test_minilm_encoder_batches_concurrent_requests_of_one_bucket(grpc) -> None:  # noqa: ANN001
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"request number {i} asks for an embedding of a short sentence" for i in range(48)]
    together = _infer(grpc, "minilm", "TEXT", _texts(texts), "embedding")

    def stats() -> tuple[int, int]:
        model = grpc.get_inference_statistics("minilm_encoder", as_json=True)["model_stats"][0]
        return int(model.get("inference_count", 0)), int(model.get("execution_count", 0))

    before = stats()
    with ThreadPoolExecutor(16) as pool:
        alone = list(pool.map(lambda t: _infer(grpc, "minilm", "TEXT", _texts([t]), "embedding")[0], texts))
    deadline = time.monotonic() + 10  # Triton updates its statistics just after responding
    while stats()[0] - before[0] < len(texts) and time.monotonic() < deadline:
        time.sleep(0.1)
    inferences, executions = (a - b for a, b in zip(stats(), before, strict=True))
    print(f"minilm_encoder: {inferences} texts in {executions} executions")
    np.testing.assert_allclose(np.stack(alone), together, atol=1e-5)
    assert inferences == len(texts) and executions < inferences
