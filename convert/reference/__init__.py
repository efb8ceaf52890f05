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
"""

from tritonstack.convert.reference.classic import build_wine_forest
from tritonstack.convert.reference.digits import build_digits_mlp, digits_split
from tritonstack.convert.reference.digits_cnn import build_digits_cnn
from tritonstack.convert.reference.minilm import build_minilm
from tritonstack.convert.reference.resnet import build_resnet18
from tritonstack.convert.reference.tabular import build_tabular_mlp

__all__ = ["BUILDERS", "build_all", "build_digits_mlp", "digits_split"]

BUILDERS = {
    "digits_mlp": build_digits_mlp,
    "digits_cnn": build_digits_cnn,
    "tabular_mlp": build_tabular_mlp,
    "wine_forest": build_wine_forest,
    "resnet18": build_resnet18,
    "minilm": build_minilm,
}


def build_all(repository, workdir, names=None):  # noqa: ANN001, ANN201
    """Build the named reference models (all by default); return {name: summary}."""
    return {name: BUILDERS[name](repository, workdir) for name in (names or BUILDERS)}
