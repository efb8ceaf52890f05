# The two commands of the README: `make demo` and `make test`. Everything they need is installed
# here from requirements/lock.txt into .venv (Debian 12, Python 3.11, CPU; no GPU, no Docker).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements/lock.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup models demo test test-all lint bench clean

setup: $(STAMP)

$(STAMP): requirements/lock.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/lock.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

models: setup
	$(BIN)/tritonstack models build

demo: setup
	$(BIN)/tritonstack demo

test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf build reports model_repository/*/ $(VENV)
