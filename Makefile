# Two commands for a fresh clone: `make demo` (the main job) and `make test` (the suite).
# Each creates .venv and installs what it needs; re-runs reuse it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= out/demo
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: demo test test-fast test-llm lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# One environment for the demo and the tests: everything, the local LLM included. Nothing
# compiles: llama.cpp comes as xllamacpp's prebuilt wheel (docs/llm_bindings.md).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[dev,postgres,ml,llm,llm-test,api,dashboard-test,scoring,ray,scale,tune,delivery,eval]'
	touch $@

demo: $(VENV)/.installed  ## run `adpilot run` end-to-end on the built-in sample
	$(BIN)/adpilot run --out $(OUT) --approve

test: $(VENV)/.installed  ## the default suite (what CI runs)
	$(BIN)/python -m pytest -q

test-fast: $(VENV)/.installed  ## skip slow tests
	$(BIN)/python -m pytest -q -m "not slow"

test-llm: $(VENV)/.installed  ## only the generation tests (local Qwen, llama.cpp server)
	$(BIN)/python -m pytest -q tests/test_generation.py tests/test_llm_backends.py

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks evaluation tools

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
