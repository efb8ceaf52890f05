"""Why Triton did not load a model, read from its log, in one line.

    reasons = load_errors(Path(workdir, "tritonserver.log").read_text())
    reasons["mynet"]   # "unexpected directory name 'mynet' for model 'a', directory name must equal ..."

A model whose config Triton refuses (a `name` that differs from its folder, a preferred batch size over
the maximum) or whose file does not load is listed by the repository index with no state and no reason;
the reason is only in the server's log. The newest error about a model wins.
"""

from __future__ import annotations

import re

__all__ = ["load_errors", "one_line"]

_ERRORS = (
    re.compile(r"Poll failed for model directory '(?P<name>[^']+)': (?P<reason>.*)"),
    re.compile(r"failed to load '(?P<name>[^']+)'(?: version \d+)?: (?P<reason>.*)"),
)


def load_errors(log_text: str) -> dict[str, str]:
    """model name -> the newest load error the log has for it, in one line."""
    reasons: dict[str, str] = {}
    for line in log_text.splitlines():
        if not line.startswith("E"):
            continue
        for pattern in _ERRORS:
            found = pattern.search(line)
            if found:
                reasons[found["name"]] = one_line(found["reason"].rstrip('"'))
                break
    return reasons


def one_line(reason: str) -> str:
    """The first line of a (possibly multi-line) error, whitespace squeezed; never cut within that line
    (the fix, e.g. which parameter to add, comes at its end)."""
    first = next((line for line in reason.replace("\\n", "\n").splitlines() if line.strip()), "")
    first = " ".join(first.replace('\\"', '"').split())
    return first
