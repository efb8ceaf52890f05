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
    assert tokenizer.parameters["length_buckets"].string_value == "32,64,128,256"
    with pytest.raises(InputSpecError, match="ensemble needs steps"):
        ModelSpec(name="e", platform=Platform.ENSEMBLE, max_batch_size=1, inputs=X, outputs=X)


def test_tokenizer_model_helpers_match_transformers() -> None:
    from tritonstack.convert.reference import minilm_tokenizer_model as model
    from tritonstack.convert.reference.minilm_encoder import model_dir, tokenizer

    tok = tokenizer()
    texts = model.decode([[b"hello world"], ["\xfcber lange S\xe4tze " * 200]])
    ids, mask = model.tokenize(model.load_tokenizer(model_dir()), texts)
    assert texts[0] == "hello world" and ids.dtype == mask.dtype == "int64"
    assert ids.shape == mask.shape == (2, 256)  # truncated at max_seq_length
    assert mask[0].sum() == len(tok("hello world")["input_ids"]) and mask[1].all()
    ids, mask = model.tokenize(model.load_tokenizer(model_dir(), multiple=16), ["hello world", "a bit longer text"])
    assert ids.shape == (2, 16) and mask.sum(1).tolist() == [4, 6]


def test_no_queue_policy_by_default_and_one_when_asked() -> None:
    """Triton 2.51's batcher stalls 500 ms at a time with any queue policy (convert/spec.py): none is
    written unless asked for; a size or a timeout writes exactly that (REJECT on timeout)."""
    from tritonstack.convert.spec import DEFAULT_MAX_QUEUE_SIZE, DEFAULT_QUEUE_TIMEOUT_US, Batching

    assert (DEFAULT_MAX_QUEUE_SIZE, DEFAULT_QUEUE_TIMEOUT_US) == (0, 0)
    for config in (_config(), tokenizer_spec().to_config(), encoder_spec("minilm_encoder").to_config()):
        assert not config.dynamic_batching.HasField("default_queue_policy"), config.name
        assert not config.dynamic_batching.priority_queue_policy, config.name
    policy = _config(batching=Batching(max_queue_size=7, queue_timeout_us=100_000)).dynamic_batching \
        .default_queue_policy
    assert (policy.max_queue_size, policy.default_timeout_microseconds) == (7, 100_000)
    assert policy.timeout_action == policy.REJECT
    policy = _config(batching=Batching(max_queue_size=7)).dynamic_batching.default_queue_policy
    assert (policy.max_queue_size, policy.default_timeout_microseconds) == (7, 0)
    with pytest.raises(InputSpecError, match="must be >= 0"):
        Batching(queue_timeout_us=-1)


def test_input_maxima_are_written_for_the_runner() -> None:
    import json

    encoder = encoder_spec("minilm_encoder").to_config()
    limits = json.loads(encoder.parameters["max_input_dims"].string_value)
    assert limits == {"input_ids": [256], "attention_mask": [256]}
    assert "max_input_dims" not in _config().parameters
    with pytest.raises(InputSpecError, match="one positive maximum per dim"):
        TensorSpec(name="x", dtype="INT64", dims=(-1, 4), max_dims=(8, 5))
    TensorSpec(name="x", dtype="INT64", dims=(-1, 4), max_dims=(8, 4))


def test_tokenizer_refuses_bad_text_naming_the_input() -> None:
    from tritonstack.convert.reference import minilm_tokenizer_model as model

    with pytest.raises(model.TextError, match=r"input 'TEXT' element 1 is not valid UTF-8 .*send text "
                                              "encoded as UTF-8"):
        model.decode([[b"fine"], [b"\xff\xfe bad"]])
    with pytest.raises(model.TextError, match="element 0 has 2000 bytes; this model accepts at most 1000"):
        model.decode([[b"a" * 2000]], max_text_bytes=1000)
    with pytest.raises(model.TextError, match="holds 1800 bytes in 2 texts; .* at most 1000 bytes per"):
        model.decode([[b"a" * 900], ["b" * 900]], max_text_bytes=1000, max_request_bytes=1000)
    assert model.decode([["\u00fcber"]], max_text_bytes=5) == ["\u00fcber"]
    parameters = tokenizer_spec().to_config().parameters
    assert int(parameters["max_text_bytes"].string_value) >= 4096
    assert int(parameters["max_request_bytes"].string_value) >= int(parameters["max_text_bytes"].string_value)


def test_cli_queue_defaults_are_the_spec_defaults() -> None:
    import inspect

    from tritonstack.convert.spec import DEFAULT_MAX_QUEUE_SIZE, DEFAULT_QUEUE_TIMEOUT_US

    from tritonstack.cli.convert import convert

    parameters = inspect.signature(convert).parameters
    assert parameters["max_queue_size"].default == DEFAULT_MAX_QUEUE_SIZE
    assert parameters["queue_timeout_us"].default == DEFAULT_QUEUE_TIMEOUT_US


def _seq_onnx(path):  # noqa: ANN001, ANN202
    """x FP32[N, S] -> y FP32[N, 1] (sum over the dynamic axis S)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=1)], "seq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "S"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor("axes", TensorProto.INT64, [1], [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_input_maxima_from_the_cli_syntax_reach_the_config(tmp_path) -> None:  # noqa: ANN001
    import json

    from tritonstack.convert.pipeline import ConvertOptions, convert_model
    from tritonstack.convert.samples import parse_input_specs

    from tritonstack.model_config import read_config

    (x,) = parse_input_specs(["x:FP32:-1:32"])
    assert x.dims == (-1,) and x.max_dims == (32,)
    assert parse_input_specs(["s:FP32:-1,8,-1:10,20"])[0].max_dims == (10, 8, 20)
    with pytest.raises(InputSpecError, match="one maximum per -1 dim"):
        parse_input_specs(["s:FP32:-1,8:10,8"])
    report = convert_model(ConvertOptions(model=_seq_onnx(tmp_path / "seq.onnx"), name="seq", inputs=[x],
                                          repository=tmp_path / "repo", workdir=tmp_path / "w", progress=False))
    config = read_config(tmp_path / "repo" / "seq" / "config.pbtxt")
    assert json.loads(config.parameters["max_input_dims"].string_value) == {"x": [32]}
    assert not [w for w in report.warnings if "no bound" in w]
    # outsider round 12: without a maximum nothing bounds a request (a 120 MB one was served): say so
    unbounded = convert_model(ConvertOptions(model=tmp_path / "seq.onnx", name="seq2", repository=tmp_path / "repo",
                                             workdir=tmp_path / "w", progress=False))
    assert [w for w in unbounded.warnings if "input 'x' has a dynamic dimension [-1] and no bound" in w
            and "--input x:FP32:-1:MAX" in w]
