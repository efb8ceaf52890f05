"""config.pbtxt pieces the conversion adds: version_policy, the TensorRT accelerator, ensembles."""

from __future__ import annotations

import pytest
from tritonstack.convert.reference.minilm import encoder_spec, ensemble_spec, tokenizer_spec
from tritonstack.convert.spec import ModelSpec, Platform, TensorSpec, TrtAccelerator, VersionPolicy

from tritonstack.errors import InputSpecError
from tritonstack.model_config import config_text, parse_config

X = [TensorSpec(name="x", dtype="FP32", dims=(4,))]


def _config(**kwargs: object):  # noqa: ANN202
    spec = ModelSpec(name="m", platform=Platform.ONNX, max_batch_size=8, inputs=X, outputs=X, **kwargs)
    return parse_config(config_text(spec.to_config()))  # round trip through text


@pytest.mark.parametrize(("text", "field", "value"), [
    ("latest:2", "latest", 2), ("all", "all", None), ("specific:1,3", "specific", [1, 3])])
def test_version_policy(text: str, field: str, value: object) -> None:
    policy = _config(version_policy=VersionPolicy.parse(text)).version_policy
    assert policy.WhichOneof("policy_choice") == field
    if field == "latest":
        assert policy.latest.num_versions == value
    if field == "specific":
        assert list(policy.specific.versions) == value


@pytest.mark.parametrize("text", ["latest:0", "newest", "specific:a", "latest:1,2"])
def test_bad_version_policy(text: str) -> None:
    with pytest.raises(InputSpecError):
        VersionPolicy.parse(text)


def test_trt_accelerator_block() -> None:
    config = _config(trt_accelerator=TrtAccelerator(precision="INT8", engine_cache_path="/cache"))
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert dict(accelerator.parameters) == {"precision_mode": "INT8", "max_workspace_size_bytes": str(1 << 30),
                                            "trt_engine_cache_enable": "1", "trt_engine_cache_path": "/cache"}
    with pytest.raises(InputSpecError, match="not one of FP32, FP16, INT8"):
        TrtAccelerator(precision="FP8")


def test_minilm_ensemble_configs() -> None:
    ensemble = parse_config(config_text(ensemble_spec("minilm", "minilm_encoder").to_config()))
    assert ensemble.platform == "ensemble" and not ensemble.HasField("dynamic_batching")
    assert not ensemble.instance_group
    assert 'data_type: TYPE_STRING' in config_text(ensemble)
    first, second = ensemble.ensemble_scheduling.step
    assert (first.model_name, second.model_name) == ("minilm_tokenizer", "minilm_encoder")
    assert dict(first.output_map) == {"input_ids": "ids", "attention_mask": "mask"}
    assert dict(second.input_map) == {"input_ids": "ids", "attention_mask": "mask"}
    tokenizer = tokenizer_spec().to_config()
    assert tokenizer.backend == "python" and tokenizer.parameters["max_seq_length"].string_value == "256"
    encoder = encoder_spec("minilm_encoder").to_config()
    assert encoder.platform == "onnxruntime_onnx" and list(encoder.input[0].dims) == [-1]
    assert encoder.HasField("dynamic_batching")  # Triton merges only equal shapes
    assert tokenizer.parameters["pad_to_multiple_of"].string_value == "16"
    with pytest.raises(InputSpecError, match="ensemble needs steps"):
        ModelSpec(name="e", platform=Platform.ENSEMBLE, max_batch_size=1, inputs=X, outputs=X)


def test_tokenizer_model_helpers_match_transformers() -> None:
    from tritonstack.convert.reference import minilm_tokenizer_model as model
    from tritonstack.convert.reference.minilm_encoder import tokenizer

    tok = tokenizer()
    texts = model.decode([[b"hello world"], ["\xfcber lange S\xe4tze " * 200]])
    ids, mask = model.tokenize(tok, texts)
    assert texts[0] == "hello world" and ids.dtype == mask.dtype == "int64"
    assert ids.shape == mask.shape == (2, 256)  # truncated at max_seq_length
    assert mask[0].sum() == len(tok("hello world")["input_ids"]) and mask[1].all()
    ids, mask = model.tokenize(tok, ["hello world", "a bit longer text"], multiple=16)
    assert ids.shape == (2, 16) and mask.sum(1).tolist() == [4, 6]
