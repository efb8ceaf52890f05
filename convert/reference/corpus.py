"""English sentences that ship with Python itself: docstrings of standard-library modules.

    calibration, holdout = sentences(64, part=0), sentences(128, part=1)

Used to calibrate and gate text models offline (nothing is downloaded). The two parts come from
disjoint sets of modules, so a held-out set never shares a sentence with a calibration set.
"""

from __future__ import annotations

import importlib
import re

__all__ = ["sentences"]

_MODULES = (
    ("argparse", "asyncio", "collections", "contextlib", "csv", "dataclasses", "decimal", "email",
     "functools", "heapq", "http.client", "inspect", "json", "logging", "pathlib"),
    ("pickle", "queue", "random", "re", "shutil", "socket", "sqlite3", "statistics", "string",
     "subprocess", "tarfile", "tempfile", "textwrap", "threading", "unittest", "urllib.request",
     "uuid", "zipfile", "typing", "fractions", "difflib", "calendar", "ftplib", "smtplib"),
)
_SPLIT = re.compile(r"(?<=[.!?])\s+")


def sentences(count: int, *, part: int = 0) -> list[str]:
    """Up to `count` distinct sentences (4-60 words) from the docstrings of one part's modules."""
    found: list[str] = []
    seen: set[str] = set()
    for name in _MODULES[part]:
        for text in _docstrings(importlib.import_module(name)):
            for sentence in _SPLIT.split(" ".join(text.split())):
                if 4 <= len(sentence.split()) <= 60 and sentence not in seen:
                    seen.add(sentence)
                    found.append(sentence)
                    if len(found) == count:
                        return found
    return found


def _docstrings(module: object) -> list[str]:
    texts = [module.__doc__ or ""]
    for attr in sorted(vars(module)):
        doc = getattr(getattr(module, attr), "__doc__", None)
        if isinstance(doc, str) and getattr(getattr(module, attr), "__module__", None) == module.__name__:
            texts.append(doc)
    return texts
