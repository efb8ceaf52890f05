"""What a load test sends: --shape for dynamic dims, --inputs samples.npz, and what the report says."""

import numpy as np
import pytest
from tritonstack.client.model import ModelInfo
from tritonstack.loadtest.inputs import parse_shapes, random_rows, request_rows, sent_shapes

from tritonstack.errors import ConfigError

GRU = ModelInfo.from_config(
    {
        "name": "gru",
        "max_batch_size": 8,
        "input": [
            {"name": "tokens", "data_type": "TYPE_INT64", "dims": ["-1"]},
            {"name": "features", "data_type": "TYPE_FP32", "dims": ["-1", "4"]},
        ],
        "output": [{"name": "y", "data_type": "TYPE_FP32", "dims": ["2"]}],
    }
)


def test_dynamic_dims_are_one_unless_a_shape_is_given():
    assert sent_shapes(random_rows(GRU, count=3)) == {"tokens": [[1, 1]], "features": [[1, 1, 4]]}
    rows = random_rows(GRU, count=3, shapes=parse_shapes(["tokens:32", "features:7,4"]))
    assert sent_shapes(rows) == {"tokens": [[1, 32]], "features": [[1, 7, 4]]}
    assert rows[0]["tokens"].dtype == np.int64


@pytest.mark.parametrize(
    ("texts", "needle"),
    [
        (["tokens"], "NAME:d1,d2"),
        (["tokens:x"], "NAME:d1,d2"),
        (["tokens:0"], "positive"),
        (["nope:3"], "its inputs are ['features', 'tokens']"),
        (["features:7,5"], "keep the rank and the fixed dims"),
        (["features:7"], "keep the rank"),
    ],
)
def test_bad_shapes_are_one_line_errors(texts, needle):
    with pytest.raises(ConfigError, match=None) as caught:
        random_rows(GRU, shapes=parse_shapes(texts))
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_a_shape_for_one_of_two_dynamic_inputs_is_refused_naming_the_other():
    """tokens:32 with features left at length 1 would fail at the server during the load (issue 13)."""
    with pytest.raises(ConfigError) as caught:
        random_rows(GRU, shapes=parse_shapes(["tokens:32"]))
    message = str(caught.value)
    print(message)
    assert "'features'" in message and "--shape features:" in message and "--inputs" in message
    assert "\n" not in message


def test_samples_are_drawn_per_request_and_cast(tmp_path):
    path = tmp_path / "samples.npz"
    tokens = np.arange(5 * 6).reshape(5, 6).astype(np.int32)  # int32 in the file, INT64 in the model
    np.savez(path, tokens=tokens, features=np.ones((5, 6, 4)))
    rows = request_rows(GRU, count=40, samples_path=path)
    assert len(rows) == 20 and sent_shapes(rows) == {"tokens": [[1, 6]], "features": [[1, 6, 4]]}
    assert rows[0]["tokens"].dtype == np.int64 and rows[0]["features"].dtype == np.float32
    drawn = {int(r["tokens"][0, 0]) // 6 for r in rows}
    assert len(drawn) > 1  # rows sampled, not always the first
    assert all(r["tokens"][0].tolist() in tokens.tolist() for r in rows)


@pytest.mark.parametrize(
    ("arrays", "needle"),
    [
        ({"tokens": np.zeros((3, 6))}, "missing: ['features']"),
        ({"tokens": np.zeros((3, 6)), "features": np.zeros((4, 6, 4))}, "different numbers of samples"),
        ({}, "holds no arrays"),
        ({"tokens": np.zeros((0, 6)), "features": np.zeros((0, 6, 4))}, "hold no samples"),
        ({"tokens": np.zeros((3, 6)), "features": np.zeros((3, 6, 5))}, "keep the rank and the fixed dims"),
        ({"tokens": np.zeros((3, 6)), "features": np.zeros((3, 6, 4)), "x": np.zeros(3)}, "no input for"),
        ({"tokens": np.full((3, 6), "a"), "features": np.zeros((3, 6, 4))}, "does not cast"),
    ],
)
def test_bad_samples_are_one_line_errors(tmp_path, arrays, needle):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ConfigError) as caught:
        request_rows(GRU, samples_path=path)
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_unreadable_samples_and_contradicting_shape(tmp_path):
    (tmp_path / "x.npz").write_text("not a zip")
    with pytest.raises(ConfigError, match=r"not an .npz \(not a zip archive\); save one with numpy.savez"):
        request_rows(GRU, samples_path=tmp_path / "x.npz")
    np.save(tmp_path / "one.npy", np.zeros((2, 6), np.int64))  # outsider round 5: a traceback
    with pytest.raises(ConfigError, match=r"not an .npz \(a .npy array\)"):
        request_rows(GRU, samples_path=tmp_path / "one.npy")
    with pytest.raises(ConfigError, match="cannot read"):
        request_rows(GRU, samples_path=tmp_path / "missing.npz")
    np.savez(tmp_path / "ok.npz", tokens=np.zeros((2, 6), np.int64), features=np.zeros((2, 6, 4)))
    with pytest.raises(ConfigError, match="contradicts"):
        request_rows(GRU, samples_path=tmp_path / "ok.npz", shapes={"tokens": (9,)})


def test_an_input_given_twice_by_shape_is_refused() -> None:
    """`--shape seq:4,8 --shape seq:5,8` was accepted, the last one silently winning."""
    with pytest.raises(ConfigError, match="gives input 'seq' twice"):
        parse_shapes(["seq:4,8", "seq:5,8"])
