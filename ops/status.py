"""Read the drift gauges off a Triton metrics endpoint (what `tritonstack ops drift-status` shows).

    rows = drift_status(urlopen("http://127.0.0.1:8002/metrics").read().decode())
    for row in rows:
        print(row.model, row.version, row.scores["psi_mean"], row.alerting)

Thresholds are the ones of deploy/prometheus/alerts.yml (a unit test keeps them equal).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from tritonstack.convert.manifest import ADDED, VersionCheck, check_version

__all__ = ["ALERT_THRESHOLDS", "DriftRow", "cache_counts", "drift_status", "not_loaded_yet",
           "not_ready_served", "served_by_policy", "unverified_served", "verification"]

#: gauge -> value above which the Prometheus alert fires (DataDriftHigh, EmbeddingShiftHigh)
ALERT_THRESHOLDS = {"psi_mean": 0.1, "embedding_mmd": 0.05}

_LINE = re.compile(r"^tritonstack_drift_(?P<name>\w+)\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass
class DriftRow:
    """The drift gauges of one model instance."""

    model: str
    version: str
    instance: str
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def scored(self) -> bool:
        """False while the window holds fewer rows than the reference's min_rows (the scores read NaN:
        after a start or restart, or at low traffic)."""
        return math.isfinite(self.scores.get("psi_mean", math.nan))

    @property
    def alerting(self) -> list[str]:
        """Scores over their alert threshold."""
        return [k for k, limit in ALERT_THRESHOLDS.items() if self.scores.get(k, 0.0) > limit]


_SERVED = re.compile(r"^nv_inference_count\{(?P<labels>[^}]*)\}", re.MULTILINE)


def drift_status(metrics_text: str) -> list[DriftRow]:
    """One row per (model, version, instance) with its aggregate drift scores (per-feature PSI left out),
    and one empty row (instance "") per served version that publishes no drift gauges, so that every
    version Triton serves (two during a canary) is listed."""
    rows: dict[tuple[str, str, str], DriftRow] = {}
    for match in _LINE.finditer(metrics_text):
        if match["name"] == "feature_psi":
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        key = (labels.get("model", ""), labels.get("version", ""), labels.get("model_instance", ""))
        rows.setdefault(key, DriftRow(*key)).scores[match["name"]] = float(match["value"])
    monitored = {(model, version) for model, version, _ in rows}
    for match in _SERVED.finditer(metrics_text):
        labels = dict(_LABEL.findall(match["labels"]))
        key = (labels.get("model", ""), labels.get("version", ""), "")
        if key[:2] not in monitored:
            rows.setdefault(key, DriftRow(*key))
    return [rows[k] for k in sorted(rows)]


def verification(repository: Path) -> dict[tuple[str, int], VersionCheck]:
    """For each version folder of the repository: do its files match the hashes its manifest verified?"""
    checks = {}
    for model_dir in sorted(p for p in Path(repository).iterdir() if (p / "config.pbtxt").is_file()):
        for version_dir in sorted((p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()),
                                  key=lambda p: int(p.name)):
            checks[(model_dir.name, int(version_dir.name))] = check_version(version_dir)
    return checks


def served_by_policy(repository: Path, models: set[str]) -> set[tuple[str, int]]:
    """(model, version) pairs the `version_policy` of each model's config.pbtxt serves."""
    from tritonstack.ops.versions import VersionManager

    manager = VersionManager(Path(repository), control=None)  # reading the policy needs no server
    return {(model, version) for model in sorted(models) for version in manager.policy(model)}


def unverified_served(checks: dict[tuple[str, int], VersionCheck], served: set[tuple[str, int]]) -> list[str]:
    """`model version (status)` of each served version that is neither verified, nor changed, nor added by
    `versions add` with its hashes intact (e.g. "unverified", "no manifest"): nothing records where
    its files came from."""
    return [f"{model} {version} ({check.status})" for (model, version), check in sorted(checks.items())
            if (model, version) in served and not check.verified and check.status != ADDED
            and not check.status.startswith("changed")]


def not_ready_served(index: list[dict], served: set[tuple[str, int]]) -> list[str]:
    """`model version (state: reason)` of each version the config serves that Triton failed to load or
    unloaded, for the models Triton loaded or tried to (Triton's repository index; a model never loaded is
    left out, and so is a version Triton has not tried yet: `not_loaded_yet`)."""
    problems = []
    for model, version, entry in _served_not_ready(index, served):
        if entry.get("state"):
            reason = (entry.get("reason") or "").strip().splitlines()
            problems.append(f"{model} {version} ({entry['state']}{': ' + reason[0][:200] if reason else ''})")
    return problems


def not_loaded_yet(index: list[dict], served: set[tuple[str, int]]) -> list[str]:
    """`model version` of each version the config serves that Triton has not tried to load (e.g. a new
    version under a `latest` policy, converted while the server runs): not a fault, it waits for a load."""
    return [f"{model} {version}" for model, version, entry in _served_not_ready(index, served)
            if not entry.get("state")]


def _served_not_ready(index: list[dict], served: set[tuple[str, int]]) -> list[tuple[str, int, dict]]:
    """(model, version, index entry or {}) of the served versions not READY, of the models Triton knows."""
    entries = {(e.get("name"), str(e.get("version", ""))): e for e in index}
    tried = {e.get("name") for e in index if e.get("state")}
    found = []
    for model, version in sorted(served):
        entry = entries.get((model, str(version))) or entries.get((model, ""), {})
        if model in tried and entry.get("state") != "READY":
            found.append((model, version, entry))
    return found


def cache_counts(model_stats: list[dict]) -> dict[tuple[str, str], tuple[int, int]]:
    """(model, version) -> (response-cache hits, misses) from Triton's statistics (`model_stats`)."""
    counts = {}
    for entry in model_stats:
        stats = entry.get("inference_stats", {})
        counts[(entry.get("name", ""), str(entry.get("version", "")))] = (
            int(stats.get("cache_hit", {}).get("count", 0)), int(stats.get("cache_miss", {}).get("count", 0)))
    return counts
