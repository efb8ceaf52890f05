"""The native backend's pure checks (serve/native/versions.cc, types.cc, padding.cc), compiled with a tiny driver,
and the build cache key; plus which ONNX models the plan leaves to the Python runner."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from tritonstack.serve.native_build import SOURCES, source_hash
from tritonstack.serve.plan import plan_repository, python_runner_config

from tritonstack.model_config import new_config, write_config

DRIVER = r"""
#include <cstdio>
#include "versions.h"
#include "types.h"
#include "padding.h"
using namespace tritonstack;
void runs(const char* label, std::vector<int64_t> lengths, int64_t cost) {
  std::printf("%s [", label);
  for (const std::vector<int64_t>& run : SplitByLength(lengths, cost)) {
    std::printf("(");
    for (int64_t row : run) std::printf(" %lld", (long long)row);
    std::printf(" )");
  }
  std::printf("]\n");
}
int main() {
  const int64_t mask[] = {1, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0};  // 3 rows of 4: used 2, 4, 1
  std::vector<int64_t> used = UsedLengths(reinterpret_cast<const char*>(mask), 3, 4, 8);
  std::printf("used [%lld %lld %lld]\n", (long long)used[0], (long long)used[1], (long long)used[2]);
  runs("split far", {200, 3, 190, 5}, 16);
  runs("split near", {20, 22, 21, 23}, 16);
  runs("split off", {200, 3}, 0);
  runs("split one", {7}, 16);
  std::vector<char> out;
  const char rows[] = "abcdEFGHijkl";
  GatherRows(rows, 4, {2, 0}, 2, &out);
  std::printf("gather %.*s\n", (int)out.size(), out.data());
  std::printf("triton 1.19 [%s]\n", CheckTritonApi(1, 19).c_str());
  std::printf("triton 1.20 [%s]\n", CheckTritonApi(1, 20).c_str());
  std::printf("triton 1.17 [%s]\n", CheckTritonApi(1, 17).c_str());
  std::printf("triton 2.0 [%s]\n", CheckTritonApi(2, 0).c_str());
  std::printf("ort 1.32.0 [%s]\n", CheckOrtVersion("1.32.0", true).c_str());
  std::printf("ort 1.16.3 [%s]\n", CheckOrtVersion("1.16.3", true).c_str());
  std::printf("ort nullapi [%s]\n", CheckOrtVersion("1.32.0", false).c_str());
  const int64_t overflow[] = {int64_t(1) << 56, 64}, wraps[] = {(int64_t(1) << 56) + 1, 64},
                fine[] = {3, 64}, negative[] = {-1, 64};
  uint64_t bytes = 0;
  std::printf("overflow %d\n", CheckedByteSize(overflow, 2, 4, &bytes));
  std::printf("wraps %d\n", CheckedByteSize(wraps, 2, 4, &bytes));
  std::printf("negative %d\n", CheckedByteSize(negative, 2, 4, &bytes));
  int ok = CheckedByteSize(fine, 2, 4, &bytes);
  std::printf("fine %d %llu\n", ok, (unsigned long long)bytes);
}
"""


@pytest.fixture(scope="module")
def checks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("needs g++ (make sysdeps)")
    work = tmp_path_factory.mktemp("native_checks")
    (work / "driver.cc").write_text(DRIVER)
    binary = work / "driver"
    subprocess.run([compiler, "-std=c++17", "-Wall", "-Wextra", "-Werror", f"-I{SOURCES}", str(work / "driver.cc"),
                    str(SOURCES / "versions.cc"), str(SOURCES / "types.cc"), str(SOURCES / "padding.cc"), "-o", str(binary)], check=True)
    lines = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout.splitlines()
    return {(line.split(" [")[0] if "[" in line else line.split()[0]): line for line in lines}


def test_triton_backend_api_check_names_both_versions(checks: dict[str, str]) -> None:
    assert checks["triton 1.19"].endswith("[]") and checks["triton 1.20"].endswith("[]")
    for older in ("triton 1.17", "triton 2.0"):
        assert "Triton backend API " + older.split()[1] in checks[older]
        assert "backend API 1.19" in checks[older] and "--runner python" in checks[older]


def test_ort_version_check_names_both_versions(checks: dict[str, str]) -> None:
    assert checks["ort 1.32.0"].endswith("[]")
    assert "ONNX Runtime 1.16.3 serves C API versions up to 16" in checks["ort 1.16.3"]
    assert "declares ORT C API 17" in checks["ort 1.16.3"]
    assert "declares ORT C API 17" in checks["ort nullapi"]


def test_byte_size_is_overflow_safe(checks: dict[str, str]) -> None:
    assert checks["overflow"] == "overflow 0"
    assert checks["wraps"] == "wraps 0"  # (2**56 + 1) * 64 * 4 wraps to 256 in 64 bits
    assert checks["negative"] == "negative 0"
    assert checks["fine"] == "fine 1 768"


def test_padding_lengths_runs_and_gather(checks: dict[str, str]) -> None:
    assert checks["used"] == "used [2 4 1]"  # one past the last non-zero column; an all-zero row is 1
    assert checks["split far"] == "split far [( 1 3 )( 2 0 )]"  # short rows apart from long ones
    assert checks["split near"] == "split near [( 0 2 1 3 )]"  # a run costs more than the padding saved
    assert checks["split off"] == "split off [( 0 1 )]" and checks["split one"] == "split one [( 0 )]"
    assert checks["gather"] == "gather ijab"


def test_build_key_changes_with_sources_and_flags() -> None:
    assert source_hash() != source_hash(sanitize=True)
    assert source_hash() == source_hash()


def _onnx_model(repository: Path, name: str, *, runner: str | None = None, drift: bool = False) -> Path:
    (repository / name / "1").mkdir(parents=True)
    config = new_config()
    config.name, config.platform = name, "onnxruntime_onnx"
    if runner:
        config.parameters["tritonstack_runner"].string_value = runner
    write_config(config, repository / name / "config.pbtxt")
    if drift:
        (repository / name / "1" / "drift_reference.json").write_text("{}")
    return repository / name


def test_plan_sends_only_opted_in_models_to_the_python_runner(tmp_path: Path) -> None:
    """A drift reference keeps a model native (the native backend publishes the drift gauges)."""
    _onnx_model(tmp_path, "plain")
    _onnx_model(tmp_path, "drifty", drift=True)
    _onnx_model(tmp_path, "asks", runner="python")
    _onnx_model(tmp_path, "asks_drifty", runner="python", drift=True)
    _onnx_model(tmp_path, "keeps", runner="native", drift=True)
    plan = plan_repository(tmp_path)
    assert sorted(plan.models) == ["asks", "asks_drifty", "drifty", "keeps", "plain"]
    assert sorted(plan.python) == ["asks", "asks_drifty"]
    assert "tritonstack_runner=python" in plan.python["asks_drifty"]
    assert plan_repository(tmp_path, runner="python").python == {}
    override = python_runner_config(tmp_path / "asks")
    assert '"backend": "onnxruntime_python"' in override and "platform" not in override


def test_missing_sources_are_refused_before_any_compiler_runs(tmp_path: Path, monkeypatch) -> None:
    """An install without serve/native (package data left out) gets one clear error, not an empty library."""
    from tritonstack.serve import native_build

    from tritonstack.errors import NativeBuildError

    monkeypatch.setattr(native_build, "SOURCES", tmp_path / "native")
    monkeypatch.setattr(native_build, "_build_root", lambda: tmp_path / "build")
    with pytest.raises(NativeBuildError, match=r"C\+\+ sources are missing from .*native; reinstall"):
        native_build.native_backend()
    assert not (tmp_path / "build").exists() or not any((tmp_path / "build").rglob("*.so"))
