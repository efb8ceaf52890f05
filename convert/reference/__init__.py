"""Reference models, trained at build time on data that ships with the packages (no download).

    from tritonstack.convert.reference import build_all
    build_all(Path("model_repository"), Path("build"))
"""

from tritonstack.convert.reference.digits import build_digits_mlp, digits_split

__all__ = ["build_all", "build_digits_mlp", "digits_split"]

BUILDERS = {"digits_mlp": build_digits_mlp}


def build_all(repository, workdir, names=None):  # noqa: ANN001, ANN201
    """Build the named reference models (all by default); return {name: summary}."""
    return {name: BUILDERS[name](repository, workdir) for name in (names or BUILDERS)}
