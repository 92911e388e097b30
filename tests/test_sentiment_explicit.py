"""Training the sentiment models is an explicit step (issue 19): profiling only loads them.

With an empty model store ``auto`` profiling trains nothing and states the star-rating fallback
with why and the command that builds the models; ``model`` refuses with that command. The
shell's step (``adpilot profile build``, via ``models_fetch.ensure_sentiment_models``) builds
them from the real data first, and profiling then scores with them.
"""

from __future__ import annotations

import json

import pytest

from adpilot import fallbacks
from adpilot.artifacts import ModelStore
from adpilot.errors import InputError
from adpilot.pipeline import SAMPLE_FILES, sample_dir
from adpilot.profiling.build import profile_tables
from adpilot.profiling.polarity import rating_polarity, resolve_sentiment

FETCH = "adpilot models fetch sentiment"


@pytest.fixture
def sample_reviews(tmp_path):
    """The built-in sample's reviews, ingested (canonical columns)."""
    from adpilot.data.ingest import ingest_file
    from adpilot.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'sample.db'}")
    ingest_file("reviews", sample_dir() / SAMPLE_FILES["reviews"], store=store)
    return store.read("reviews")


def test_auto_with_an_empty_store_trains_nothing_and_states_the_fallback(tmp_path,
                                                                         sample_reviews):
    models = ModelStore(tmp_path / "models")
    with fallbacks.recording() as rec:
        run = profile_tables(sample_reviews, sentiment="auto", embedder="lsa", k=2,
                             model_store=models)
    assert run.sentiment_source == "rating (fallback: no sentiment model)"
    assert list(run.review_sentiment) == list(rating_polarity(sample_reviews))
    assert not models.root.exists() or not any(models.root.iterdir())  # nothing trained
    note = rec["sentiment"]
    assert "not built" in note.reason and str(models.root) in note.reason
    assert FETCH in note.reason and FETCH in note.fix
    # no store at all (a library caller that passes none): the same fallback, saying so
    with fallbacks.recording() as rec:
        assert resolve_sentiment("auto").mode == "rating"
    assert "no model store" in rec["sentiment"].reason


def test_model_mode_without_the_models_names_the_command(tmp_path):
    with pytest.raises(InputError, match=FETCH):
        resolve_sentiment("model", store=ModelStore(tmp_path / "models"), load=True)
    with pytest.raises(InputError, match=FETCH):
        resolve_sentiment("model")
    assert resolve_sentiment("rating").source == "rating"  # needs no store


def test_a_training_step_that_built_nothing_is_stated_with_why(tmp_path):
    from adpilot.profiling.polarity import state_unbuilt

    # what ensure_sentiment_models answers when the training data cannot be had
    status = "not built: the data set womens_clothing is not available (offline)"
    with pytest.raises(InputError, match=FETCH):
        state_unbuilt(status, "model")
    state_unbuilt("ok", "model")  # built: nothing to say
    with fallbacks.recording() as rec:
        state_unbuilt(status, "auto")
        # profiling's own note afterwards does not replace the first, which says why
        resolve_sentiment("auto", store=ModelStore(tmp_path / "models"))
    assert "womens_clothing" in rec["sentiment"].reason and FETCH in rec["sentiment"].fix


def test_profile_build_trains_first_then_profiling_loads(monkeypatch, tmp_path, shared_data,
                                                         isolated_home):
    """`adpilot profile build` builds the polarity models (with progress) before profiling;
    a second profiling call loads them and trains nothing."""
    from typer.testing import CliRunner

    from adpilot.cli import app
    from adpilot.data.ingest import ingest_file
    from adpilot.profiling.sentiment import QUICK_MODELS
    from adpilot.store import open_store

    # a smaller head than the shipped quick settings keeps the build short; same data and path
    monkeypatch.setitem(QUICK_MODELS, ("polarity", "en"),
                        {**QUICK_MODELS[("polarity", "en")], "max_head_train": 300,
                         "val_fraction": 0.02})
    monkeypatch.setenv("ADPILOT_DATA_DIR", str(shared_data))
    monkeypatch.setenv("ADPILOT_OFFLINE", "1")
    url = f"sqlite:///{tmp_path / 'adpilot.db'}"
    store = open_store(url)
    for kind, name in SAMPLE_FILES.items():
        ingest_file(kind, sample_dir() / name, store=store)

    result = CliRunner().invoke(app, ["profile", "build", "--db", url, "--embedder", "lsa",
                                      "--k", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["sentiment"].startswith("model (polarity; en: quick")
    models = ModelStore(isolated_home / "cache" / "models")
    built = {p.name for p in models.root.iterdir() if (p / "meta.json").is_file()}
    assert {"sentiment-polarity-en-quick", "sentiment-polarity-zh"} <= built
    stamps = {p: p.stat().st_mtime_ns for p in models.root.glob("sentiment-*/meta.json")}

    run = profile_tables(store.read("reviews"), sentiment="model", embedder="lsa", k=2,
                         model_store=models)
    assert run.sentiment_source == summary["sentiment"]
    assert run.review_sentiment.between(-1, 1).all() and run.review_sentiment.nunique() > 5
    assert stamps == {p: p.stat().st_mtime_ns for p in models.root.glob("sentiment-*/meta.json")}
