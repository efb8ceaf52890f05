# The two commands of the README: `make demo` and `make test`. Everything they need is installed
# here from requirements/lock.txt into .venv (Debian 12, Python 3.11, CPU; no GPU, no Docker).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements/lock.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup sysdeps native native-asan models demo test lint bench clean

# Debian packages the tests use for real: Prometheus/promtool, docker-compose (config validation
# only), libb64 (perf_analyzer), Chromium (looking at the HTML report). Installed once, as root.
SYSDEPS := prometheus docker-compose libb64-0d chromium
sysdeps:
	@missing=$$(for p in $(SYSDEPS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

setup: $(STAMP) native

# The native onnxruntime backend (serve/native/*.cc): Debian's g++ if missing, then a build cached by a
# hash of the sources in build/native/<hash>/ (a no-op when the sources did not change).
native: $(STAMP)
	@command -v g++ >/dev/null 2>&1 || { \
	  echo "installing Debian's g++ for the native backend"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends g++ >/dev/null; }
	$(BIN)/python -m tritonstack.serve.native_build

native-asan: native
	$(BIN)/python -m tritonstack.serve.native_build --asan

$(STAMP): requirements/lock.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/lock.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

models: setup
	$(BIN)/tritonstack models build

demo: setup
	$(BIN)/tritonstack demo

test: setup sysdeps
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf build reports model_repository/*/ $(VENV)
