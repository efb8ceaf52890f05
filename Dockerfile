# tritonstack for hosts WITHOUT a GPU, and the Locust image for every host.
#
#   docker build --target serve    -t tritonstack/serve:0.1.0 .     # embedded Triton 2.51 (CPU)
#   docker build --target loadtest -t tritonstack/loadtest:0.1.0 .  # Locust + tritonstack client
#
# `serve` runs the real Triton Inference Server 2.51 shipped in the nvidia-pytriton wheel (CPU only;
# ONNX models through the ONNX Runtime runner, drift metrics included) on a model repository mounted
# at /models. On a GPU host use the NGC image instead (docker-compose.yml, profile "gpu").
# Used by docker-compose.yml (profile "cpu", and the locust services) and deploy/k8s/locust.yaml.
# Not built on the project's CI machine (no Docker engine): tests/unit/test_ops_deploy.py checks it
# statically and `docker-compose config` validates the compose file that builds it.

FROM python:3.11-slim-bookworm AS base
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 10001 tritonstack
WORKDIR /app
COPY requirements/lock.txt requirements/lock.txt
COPY pyproject.toml README.md ./
COPY tritonstack tritonstack
COPY serve serve
COPY convert convert
COPY client client
COPY loadtest loadtest
COPY ops ops

FROM base AS serve
RUN pip install -c requirements/lock.txt ".[serve]"
USER tritonstack
# gRPC and metrics only: `serve` runs with HTTP off (Triton 2.51's HTTP can be crashed; README, Security)
EXPOSE 8001 8002
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, tritonclient.grpc as g; sys.exit(not g.InferenceServerClient('127.0.0.1:8001').is_server_ready(client_timeout=2))"]
ENTRYPOINT ["tritonstack"]
CMD ["serve", "--repository", "/models", "--host", "0.0.0.0", "--grpc-port", "8001", "--metrics-port", "8002"]

FROM base AS loadtest
RUN apt-get update && apt-get install -y --no-install-recommends libb64-0d \
    && rm -rf /var/lib/apt/lists/* \
    && pip install -c requirements/lock.txt ".[loadtest]"
USER tritonstack
EXPOSE 8089 5557
ENTRYPOINT ["locust", "-f", "/app/loadtest/locustfile.py"]
