"""A pytest plugin that logs which tests train a model implicitly, and for how long.

Wraps the four model builders (complaint classifiers, fluency references, default sentiment
models, attractiveness model) and appends ``seconds builder test-id`` for every call over a
second to ``$ADPILOT_BUILD_LOG`` (default ``/tmp/model_builds.log``). The README's "only the
API workflow test's build is large" comes from::

    PYTHONPATH=tools .venv/bin/python -m pytest -q -p model_build_timing -k "not postgresql" \
        tests/test_api.py tests/test_fresh_install.py tests/test_scoring.py tests/test_cli.py \
        tests/test_usecases_library.py tests/test_dashboard_send.py tests/test_dashboard_browser.py \
        tests/test_sentiment_first_run.py tests/test_executor.py tests/test_catalogue_real.py \
        tests/test_generate_batch.py tests/test_generation.py tests/test_guardrails.py \
        tests/test_tone.py tests/test_compliance_score.py
"""

from __future__ import annotations

import functools
import importlib
import os
import time

BUILDERS = [("adpilot.generation.tone", "ensure_complaint_models"),
            ("adpilot.scoring.fluency", "ensure_reference_lms"),
            ("adpilot.profiling.sentiment", "ensure_default_models"),
            ("adpilot.scoring.attractiveness", "build_default_model")]
LOG = os.environ.get("ADPILOT_BUILD_LOG", "/tmp/model_builds.log")


def _timed(module: str, name: str) -> None:
    """Replace ``module.name`` by a wrapper that logs calls over a second (callers import the
    builders inside their functions, so they pick the wrapper up)."""
    mod = importlib.import_module(module)
    build = getattr(mod, name)

    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return build(*args, **kwargs)
        finally:
            seconds = time.perf_counter() - started
            if seconds > 1:
                with open(LOG, "a", encoding="utf-8") as out:
                    out.write(f"{seconds:7.1f} {name} {os.environ.get('PYTEST_CURRENT_TEST', '?')}\n")

    setattr(mod, name, wrapper)


for _module, _name in BUILDERS:
    _timed(_module, _name)
