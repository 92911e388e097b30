"""Shared fixtures: an isolated ADPILOT_HOME, the real data folder, real stores (SQLite file and
PostgreSQL server when ADPILOT_TEST_PG_URL is set; CI sets it and ADPILOT_REQUIRE_PG=1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import adpilot.delivery.ledger  # noqa: F401  (its tables join the metadata db_url wipes)
import adpilot.optimization.campaigns  # noqa: F401  (likewise)
from adpilot.store import Store
from adpilot.store.sql import metadata

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ADPILOT_DATA_DIR", ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Every test gets its own ADPILOT_HOME so nothing touches ~/.adpilot."""
    home = tmp_path / "adpilot-home"
    monkeypatch.setenv("ADPILOT_HOME", str(home))
    monkeypatch.delenv("ADPILOT_DB", raising=False)
    return home


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the real data folder {SHARED_DATA} is missing (set ADPILOT_DATA_DIR)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def data_sources(shared_data, tmp_path_factory):
    """Where the loaders find the data sets: the real data folder, downloads off."""
    from adpilot.datasets_fetch import DataSources

    return DataSources(cache_dir=tmp_path_factory.mktemp("data-cache"), data_dir=shared_data,
                       offline=True)


def _pg_url() -> str | None:
    url = os.environ.get("ADPILOT_TEST_PG_URL")
    if not url and os.environ.get("ADPILOT_REQUIRE_PG"):
        pytest.fail("ADPILOT_REQUIRE_PG is set but ADPILOT_TEST_PG_URL is not")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """A fresh, empty database: a SQLite file, or the test PostgreSQL server wiped clean."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    url = _pg_url()
    if not url:
        pytest.skip("no PostgreSQL server (run .ci/start-postgres and set ADPILOT_TEST_PG_URL)")
    store = Store(url)
    metadata.drop_all(store.engine)
    store.dispose()
    return url


@pytest.fixture
def store(db_url):
    s = Store(db_url).init()
    yield s
    s.dispose()


@pytest.fixture(scope="session")
def local_qwen(tmp_path_factory) -> Path:
    """The default local GGUF generator, assembled once per session (1.1 GB) into
    ADPILOT_TEST_MODELS or a session folder; skips when llama.cpp or the model packages are
    not installed."""
    pytest.importorskip("xllamacpp")
    from adpilot.backends.llm.models import DEFAULT_MODEL, model_path
    from adpilot.errors import MissingDependencyError

    try:
        return model_path(DEFAULT_MODEL,
                          cache_dir=Path(os.environ.get("ADPILOT_TEST_MODELS")
                                         or tmp_path_factory.mktemp("models")))
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
