# Two commands for a fresh clone: `make demo` (the main job) and `make test` (the suite).
# Each creates .venv and installs what it needs; re-runs reuse it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= out/demo

.PHONY: demo test test-fast lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,postgres,ml]'
	touch $@

demo: $(VENV)/.installed  ## run `adpilot run` end-to-end on the built-in sample
	$(BIN)/adpilot run --out $(OUT)

test: $(VENV)/.installed  ## the whole default suite (what CI runs)
	$(BIN)/python -m pytest -q

test-fast: $(VENV)/.installed  ## skip slow real-model tests
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks evaluation

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
