"""Reference models, trained at build time on data that ships with the packages (no download).

    from tritonstack.convert.reference import build_all
    build_all(Path("model_repository"), Path("build"))

| model | what | precisions |
|---|---|---|
| digits_mlp | scikit-learn MLP on 8x8 digits (scaler in the graph) | FP32 |
| digits_cnn | PyTorch CNN on 8x8 digits, trained at build time | FP32, INT8 if the gate passes |
| tabular_mlp | PyTorch MLP on breast cancer, scaler + temperature in graph | FP32, INT8 if the gate passes |
| wine_forest | scikit-learn RandomForest on wine, via skl2onnx | FP32 |
| resnet18 | ResNet-18, random weights (speed only) | FP32, INT8 if the gate passes |
| minilm | all-MiniLM-L6-v2 ensemble: strings -> tokenizer -> encoder | FP32, INT8 if the gate passes |

`build_steps` yields after each model (name, summary, seconds) so that a caller can report progress
as it goes (`tritonstack models build` prints a line per model when its output is not a terminal).
"""

import logging
import time
from collections.abc import Iterator

from tritonstack.convert.reference.classic import build_wine_forest
from tritonstack.convert.reference.digits import build_digits_mlp, digits_split
from tritonstack.convert.reference.digits_cnn import build_digits_cnn
from tritonstack.convert.reference.minilm import build_minilm
from tritonstack.convert.reference.resnet import build_resnet18
from tritonstack.convert.reference.tabular import build_tabular_mlp

__all__ = ["BUILDERS", "build_all", "build_digits_mlp", "build_steps", "digits_split"]

_LOGGER = logging.getLogger(__name__)

BUILDERS = {
    "digits_mlp": build_digits_mlp,
    "digits_cnn": build_digits_cnn,
    "tabular_mlp": build_tabular_mlp,
    "wine_forest": build_wine_forest,
    "resnet18": build_resnet18,
    "minilm": build_minilm,
}


def build_steps(repository, workdir, names=None) -> Iterator[tuple[str, dict, float]]:  # noqa: ANN001
    """Build the named reference models (all by default) one by one; yield (name, summary, seconds)
    as soon as each is written."""
    for name in names or BUILDERS:
        begin = time.monotonic()
        _LOGGER.info("building reference model %s", name)
        summary = BUILDERS[name](repository, workdir)
        seconds = time.monotonic() - begin
        _LOGGER.info("built reference model %s in %.1f s", name, seconds)
        yield name, summary, seconds


def build_all(repository, workdir, names=None):  # noqa: ANN001, ANN201
    """Build the named reference models (all by default); return {name: summary}."""
    return {name: summary for name, summary, _ in build_steps(repository, workdir, names)}
