"""Deployment files, validated offline: what cannot run here (GPU compose, a cluster) is checked here.

- Prometheus config and rules: `promtool check config|rules` and `promtool test rules` (Debian's 2.42).
- docker-compose.yml: `docker-compose config` (Debian's 1.29 parses it without an engine), both profiles.
- Kubernetes manifests: kubernetes-validate, strict, against its newest bundled schema.
- Dockerfile, Grafana provisioning, Prometheus adapter values and PrometheusRule: static checks.
- CI templates (deploy/ci): check-jsonschema's bundled GitHub Actions / GitLab CI schemas, and their
  convert command run as written on a tiny model.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMTOOL = shutil.which("promtool")
COMPOSE = shutil.which("docker-compose")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="needs Debian's prometheus (make sysdeps)")
needs_compose = pytest.mark.skipif(COMPOSE is None, reason="needs Debian's docker-compose (make sysdeps)")


def _run(*argv: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120,  # noqa: S603
                          env={**os.environ, **(env or {})})


# -- Prometheus ------------------------------------------------------------------------------------
@needs_promtool
def test_promtool_accepts_rules_and_config(tmp_path: Path) -> None:
    rules = _run(PROMTOOL, "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml"))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = _run(PROMTOOL, "check", "config", "--syntax-only", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr


@needs_promtool
def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    result = _run(PROMTOOL, "test", "rules", "alerts_test.yml", cwd=DEPLOY / "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr


def _alert_names() -> set[str]:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def test_alerts_cover_the_issue_and_each_has_a_promtool_test() -> None:
    names = _alert_names()
    assert {"TritonP99LatencyOverBudget", "TritonFailureRatioHigh", "TritonQueueTimeRising",
            "TritonModelNotReady", "DataDriftHigh"} <= names
    tested = set(re.findall(r"alertname: (\w+)", (DEPLOY / "prometheus" / "alerts_test.yml").read_text()))
    assert names - tested == set(), "add a promtool test case for these alerts"


# -- docker-compose ----------------------------------------------------------------------------------
def _compose_config(profile: str) -> dict:
    result = _run(COMPOSE, "--profile", profile, "config", env={"TRITONSTACK_ADMIN_KEY": "k3y"})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


@needs_compose
def test_compose_gpu_profile_runs_ngc_triton_on_a_gpu_with_health_check() -> None:
    triton = _compose_config("gpu")["triton-gpu"]
    assert triton["profiles"] == ["gpu"]
    image = re.fullmatch(r"nvcr\.io/nvidia/tritonserver:(\d\d)\.(\d\d)-py3", triton["image"])
    assert image and int(image.group(1)) >= 25, "use a current NGC release (2.51 has unfixed CVEs)"
    device = triton["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert [p.split(":", 1)[1] for p in triton["ports"]] == ["8000:8000/tcp", "8001:8001/tcp", "8002:8002/tcp"]
    assert "/v2/health/ready" in " ".join(triton["healthcheck"]["test"])
    assert "--model-control-mode=explicit" in triton["command"]
    assert "--metrics-config=summary_latencies=true" in triton["command"]
    assert any(a.endswith("tritonstack-admin-key=k3y") for a in triton["command"])
    assert triton["volumes"][0] == f"{ROOT / 'model_repository'}:/models:rw"
    assert "triton" in triton["networks"]["default"]["aliases"]


@needs_compose
def test_compose_cpu_profile_builds_our_embedded_server() -> None:
    services = _compose_config("cpu")
    triton = services["triton-cpu"]
    assert triton["build"]["target"] == "serve" and Path(triton["build"]["context"]) == ROOT
    assert "triton" in triton["networks"]["default"]["aliases"]
    assert triton["environment"]["TRITONSTACK_ADMIN_KEY"] == "k3y"
    assert "is_server_ready" in " ".join(triton["healthcheck"]["test"])  # gRPC: `serve` has HTTP off


@needs_compose
def test_compose_monitoring_and_locust_point_at_files_that_exist() -> None:
    services = _compose_config("gpu")
    for service in ("prometheus", "grafana"):
        for volume in services[service]["volumes"]:
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if source.startswith("/"):
                assert Path(source).exists(), f"{service} mounts {source}, which does not exist"
    assert services["locust-master"]["command"][:3] == ["--master", "--host", "triton:8001"]
    assert services["locust-worker"]["command"] == ["--worker", "--master-host", "locust-master"]
    scenario = json.loads(services["locust-master"]["environment"]["TRITONSTACK_SCENARIO"])
    assert scenario["model"] == "digits_mlp"


@needs_compose
def test_compose_refuses_to_start_without_an_admin_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRITONSTACK_ADMIN_KEY"}
    result = subprocess.run([COMPOSE, "--profile", "gpu", "config"], cwd=ROOT, capture_output=True,  # noqa: S603
                            text=True, timeout=120, env=env)
    assert result.returncode != 0 and "TRITONSTACK_ADMIN_KEY" in result.stderr


def test_dockerfile_copies_every_package_and_the_locustfile_exists() -> None:
    import tomllib

    text = (ROOT / "Dockerfile").read_text()
    folders = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
                  .values())
    copied = set(re.findall(r"^COPY (\S+) \1$", text, re.MULTILINE))
    assert folders <= copied, f"Dockerfile does not COPY {folders - copied}"
    assert {"base", "serve", "loadtest"} <= set(re.findall(r"^FROM \S+ AS (\w+)$", text, re.MULTILINE))
    assert "is_server_ready" in text and "--http" not in text and "--host\", \"0.0.0.0" in text
    entry = re.search(r'ENTRYPOINT \["locust", "-f", "/app/(\S+)"\]', text)
    assert entry and (ROOT / entry.group(1)).is_file()


# -- Grafana ---------------------------------------------------------------------------------------------
def test_grafana_dashboard_has_the_panels_the_issue_asks_for() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "tritonstack.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    for metric in ("nv_inference_request_success", 'quantile="0.5"', 'quantile="0.99"',
                   "nv_inference_queue_duration_us", "nv_inference_compute_infer_duration_us",
                   "nv_inference_exec_count", "nv_inference_request_failure", "tritonstack_drift_psi_mean",
                   "tritonstack_drift_embedding_mmd"):
        assert metric in exprs, f"no panel uses {metric}"


def _dashboard() -> dict:
    return json.loads((DEPLOY / "grafana" / "dashboards" / "tritonstack.json").read_text())


def test_grafana_dashboard_imports_into_any_grafana() -> None:
    """A datasource input (import) that is also a datasource variable (file provisioning): no fixed uid."""
    dashboard = _dashboard()
    assert [(i["name"], i["type"], i["pluginId"]) for i in dashboard["__inputs"]] == [
        ("DS_PROMETHEUS", "datasource", "prometheus")]
    refs = [p["datasource"] for p in dashboard["panels"] if "datasource" in p]
    refs += [t["datasource"] for p in dashboard["panels"] for t in p.get("targets", [])]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    refs.append(variables["model"]["datasource"])
    assert refs and all(r == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"} for r in refs), refs
    text = json.dumps(dashboard)
    assert '"uid": "prometheus"' not in text and text.count("${DS_PROMETHEUS}") == len(refs)
    # file provisioning does not apply __inputs: the same name as a datasource variable resolves it there
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"
    provisioned = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
                                 .read_text())["datasources"]
    assert any(d["type"] == "prometheus" and d.get("isDefault") for d in provisioned)


def test_grafana_dashboard_filters_every_query_by_the_model_variable() -> None:
    dashboard = _dashboard()
    model = {v["name"]: v for v in dashboard["templating"]["list"]}["model"]
    assert model["definition"] == model["query"]["query"] == "label_values(nv_inference_count, model)"
    assert model["includeAll"] and model["multi"]
    metric = re.compile(r"\b(nv_inference_\w+|tritonstack_drift_\w+|tritonstack:\w+:\w+)(\{[^}]*\})?")
    selectors = [(t["expr"], m) for p in dashboard["panels"] for t in p.get("targets", [])
                 for m in metric.finditer(t["expr"])]
    assert len(selectors) >= 12
    for expr, match in selectors:
        assert match.group(2) and 'model=~"$model"' in match.group(2), f"{match.group(1)} unfiltered in {expr}"
    alerts = next(p for p in dashboard["panels"] if p["type"] == "alertlist")
    assert alerts["options"]["alertInstanceLabelFilter"] == '{model=~"$model"}'


@needs_promtool
def test_grafana_dashboard_queries_parse_as_promql(tmp_path: Path) -> None:
    """Each panel query, with Grafana's variables filled in, is valid PromQL (promtool parses it)."""
    exprs = [t["expr"].replace("$__rate_interval", "1m").replace("$model", "digits_mlp")
             for p in _dashboard()["panels"] for t in p.get("targets", [])]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = _run(PROMTOOL, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# -- Kubernetes --------------------------------------------------------------------------------------------
def _k8s_documents() -> list[tuple[str, dict]]:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    return [(name, doc) for name in kustomization["resources"]
            for doc in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()) if doc]


def test_kubernetes_manifests_validate_strictly() -> None:
    import kubernetes_validate

    version = kubernetes_validate.latest_version()
    documents = _k8s_documents()
    for _, doc in documents:
        kubernetes_validate.validate(doc, version, strict=True)
    kinds = sorted(doc["kind"] for _, doc in documents)
    print(f"{len(documents)} manifests valid against Kubernetes {version}: {kinds}")
    broken = {**documents[0][1], "spec": {"unknownField": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def _by_kind(kind: str, name: str) -> dict:
    return next(doc for _, doc in _k8s_documents() if doc["kind"] == kind and doc["metadata"]["name"] == name)


def test_triton_deployment_probes_gpu_and_repository_volume() -> None:
    pod = _by_kind("Deployment", "triton")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/models")
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["persistentVolumeClaim"]["claimName"] == _by_kind(
        "PersistentVolumeClaim", "triton-model-repository")["metadata"]["name"]


def test_hpa_scales_on_the_queue_time_metric_the_adapter_serves() -> None:
    hpa = _by_kind("HorizontalPodAutoscaler", "triton")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "triton"}
    metric = hpa["metrics"][0]["pods"]["metric"]["name"]
    adapter = yaml.safe_load((DEPLOY / "k8s" / "prometheus-adapter-values.yaml").read_text())
    rule = adapter["rules"]["custom"][0]
    assert rule["name"]["as"] == metric == "avg_time_queue_us"
    assert "nv_inference_queue_duration_us" in rule["metricsQuery"]
    assert 'namespace="tritonstack"' in rule["seriesQuery"]


def test_locust_workers_find_the_master_and_the_master_targets_triton() -> None:
    master = _by_kind("Deployment", "locust-master")["spec"]["template"]["spec"]["containers"][0]
    worker = _by_kind("Deployment", "locust-worker")["spec"]["template"]["spec"]["containers"][0]
    service = _by_kind("Service", "locust-master")
    assert master["args"][:3] == ["--master", "--host", "triton.tritonstack.svc:8001"]
    assert worker["args"] == ["--worker", "--master-host", f"{service['metadata']['name']}.tritonstack.svc"]
    assert 5557 in [p["port"] for p in service["spec"]["ports"]]


def test_prometheus_rule_crd_carries_the_same_rules_as_alerts_yml() -> None:
    crd = yaml.safe_load((DEPLOY / "k8s" / "monitoring" / "prometheusrule.yaml").read_text())
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    assert crd["kind"] == "PrometheusRule" and crd["spec"]["groups"] == alerts["groups"]
    monitor = yaml.safe_load((DEPLOY / "k8s" / "monitoring" / "servicemonitor.yaml").read_text())
    labels = _by_kind("Service", "triton")["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


# -- CI templates for a user's own model (deploy/ci) -------------------------------------------------------
CI = {"github-actions.yml": "vendor.github-workflows", "gitlab-ci.yml": "vendor.gitlab-ci"}


def _check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess:
    """check-jsonschema with a schema bundled in the package (no network)."""
    return _run(sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path))


@pytest.mark.parametrize("name", sorted(CI))
def test_ci_template_validates_against_its_published_schema(name: str, tmp_path: Path) -> None:
    result = _check_jsonschema(CI[name], DEPLOY / "ci" / name)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = yaml.safe_load((DEPLOY / "ci" / name).read_text())
    job = broken["jobs"]["convert"] if "jobs" in broken else broken["convert-model"]
    job["timeout-minutes" if "jobs" in broken else "timeout"] = {"not": "a duration"}
    (tmp_path / name).write_text(yaml.safe_dump(broken))
    assert _check_jsonschema(CI[name], tmp_path / name).returncode != 0, "the schema check is not vacuous"


def _ci_steps() -> dict[str, tuple[dict[str, str], list[str], str]]:
    """Per template: its variables, its shell commands, and the folder it publishes."""
    github = yaml.safe_load((DEPLOY / "ci" / "github-actions.yml").read_text())
    steps = github["jobs"]["convert"]["steps"]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "success()" and upload["with"]["if-no-files-found"] == "error"
    gitlab = yaml.safe_load((DEPLOY / "ci" / "gitlab-ci.yml").read_text())
    job = gitlab["convert-model"]
    assert job["artifacts"]["when"] == "on_success"
    return {"github": (github["env"], [s["run"] for s in steps if "run" in s], upload["with"]["path"]),
            "gitlab": (gitlab["variables"], job["script"], job["artifacts"]["paths"][0])}


def test_ci_templates_install_the_converter_gate_and_publish_the_repository() -> None:
    from tritonstack.cli import _register, app

    _register()
    import typer.main

    convert = typer.main.get_command(app).commands["convert"]
    flags = {opt for param in convert.params for opt in [*param.opts, *param.secondary_opts]}
    for which, (variables, commands, published) in _ci_steps().items():
        assert variables["TRITONSTACK_SPEC"] == "tritonstack[convert]", which
        assert commands[0] == 'python -m pip install "$TRITONSTACK_SPEC"', which
        used = set(re.findall(r"(--[\w-]+)", commands[1]))
        assert {"--holdout", "--calibration", "--metric", "--budget", "--repository"} <= used, which
        assert used <= flags, f"{which}: tritonstack convert has no {used - flags}"
        assert published.rstrip("/") in ("${{ env.REPOSITORY }}", "$REPOSITORY"), which


@pytest.mark.parametrize("which", ["github", "gitlab"])
def test_ci_convert_step_runs_as_written_and_fails_when_the_gate_fails(which: str, tmp_path: Path) -> None:
    """The template's own convert command, run by bash on a tiny model: exit 0 and a repository when the
    gate passes; exit != 0 and nothing to publish when it fails (the artifact step runs on success only)."""
    from tritonstack.convert.verify import run_onnx

    from .convert_models import mlp_onnx

    variables, commands, _ = _ci_steps()[which]
    rng = np.random.default_rng(0)
    (tmp_path / "models").mkdir()
    (tmp_path / "data").mkdir()
    model = mlp_onnx(tmp_path / variables["MODEL"])
    holdout = rng.standard_normal((64, 4)).astype(np.float32)
    np.savez(tmp_path / variables["CALIBRATION"], x=rng.standard_normal((32, 4)).astype(np.float32))
    np.savez(tmp_path / variables["HOLDOUT"], x=holdout, labels=run_onnx(model, {"x": holdout})["y"].argmax(1))
    env = {**{k: str(v) for k, v in variables.items()}, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    passed = _run("bash", "-c", commands[1], env={**env, "BUDGET": "0.5"}, cwd=tmp_path)
    assert passed.returncode == 0, passed.stderr
    written = sorted(p.name for p in (tmp_path / variables["REPOSITORY"]).iterdir())
    assert written == [variables["MODEL_NAME"], f"{variables['MODEL_NAME']}_int8"]
    assert (tmp_path / variables["REPOSITORY"] / variables["MODEL_NAME"] / "config.pbtxt").is_file()
    failed_repo = tmp_path / "failed_repository"
    failed = _run("bash", "-c", commands[1], cwd=tmp_path, env={
        **env, "METRIC": "cosine", "BUDGET": "0.99999999", "REPOSITORY": str(failed_repo)})
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert not failed_repo.exists() or not any(failed_repo.iterdir())
    print(f"{which}: gate passed -> exit 0, {written}; gate failed -> exit {failed.returncode}: "
          f"{failed.stderr.strip()[:120]}")
