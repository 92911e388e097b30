"""One artifact format (adpilot-artifact.json) and one owner of model paths (ModelStore):
real models are saved, discovered by their document, loaded with checks; old folders without the
document still load and are migrated."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from adpilot import artifacts
from adpilot.artifacts import METADATA_FILE, ModelStore
from adpilot.errors import AdpilotError, ArtifactMismatchError
from adpilot.scoring.fluency import CharNgramLM, load_reference_lm, packaged_reference_lm

SRC = Path(__file__).resolve().parents[1] / "src" / "adpilot"


@pytest.fixture
def sentiment_model(shared_data, data_sources):
    from adpilot.datasets import load_dataset
    from adpilot.profiling.sentiment import SentimentModel

    reviews = (load_dataset("womens_clothing", data_sources).tables["reviews"]
               .dropna(subset=["text"]).head(300))
    return SentimentModel("polarity", "en", backbone="none").fit(
        reviews["text"].tolist(), reviews["rating"].astype(int).tolist())


def test_save_list_load(tmp_path, sentiment_model):
    from adpilot.profiling.sentiment import SentimentModel, default_model_dir
    from adpilot.profiling.sentiment.artifact import write_document

    store = ModelStore(tmp_path / "models")
    lm, _ = packaged_reference_lm("en")
    lm_dir = lm.save_artifact(store.path("fluency", "en-test"), config={"lang": "en"},
                              data_hash="abc123")
    sent_dir = default_model_dir("polarity", "en", store)
    assert sent_dir == store.root / "sentiment-polarity-en"
    sentiment_model.save(sent_dir)
    write_document(sent_dir)

    found = {m.path.name: m for m in store.list()}
    assert set(found) == {"fluency-en-test", "sentiment-polarity-en"}
    assert [m.kind for m in store.list("fluency")] == ["fluency"]
    doc = found["sentiment-polarity-en"]
    assert doc.format_version == 1 and doc.config["task"] == "polarity"
    assert doc.data_hash == sentiment_model.data_sha256_ and doc.metrics == sentiment_model.metrics_
    assert doc.config_hash == artifacts.config_hash(doc.config) and doc.created_at
    assert found["fluency-en-test"].config == {"order": 4, "discount": 0.75, "lang": "en"}

    again = CharNgramLM.load_artifact(lm_dir)
    assert again.perplexity("A linen dress") == pytest.approx(lm.perplexity("A linen dress"))
    texts = ["love it, fits perfectly", "cheap fabric, sent it back"]
    loaded = SentimentModel.load(sent_dir, task="polarity", lang="en")
    assert (loaded.predict_proba(texts) == sentiment_model.predict_proba(texts)).all()


def test_wrong_kind_and_newer_format_fail_with_the_reason(tmp_path, sentiment_model):
    from adpilot.profiling.sentiment import SentimentModel

    store = ModelStore(tmp_path)
    d = sentiment_model.save(store.path("sentiment", "polarity-en"))
    SentimentModel.load(d)  # migrates: the document is written
    assert json.loads((d / METADATA_FILE).read_text())["kind"] == "sentiment"

    with pytest.raises(ArtifactMismatchError, match="holds a 'sentiment' artifact, not 'fluency'"):
        CharNgramLM.load_artifact(d)
    doc = artifacts.load_metadata(d)
    artifacts.save_metadata(d, "sentiment", 7, config=doc.config)
    with pytest.raises(ArtifactMismatchError, match="format version 7 .* reads up to version 1"):
        SentimentModel.load(d)
    assert issubclass(ArtifactMismatchError, AdpilotError)

    raw = json.loads((d / METADATA_FILE).read_text())
    raw["config"]["task"] = "rating"  # edited without its hash
    (d / METADATA_FILE).write_text(json.dumps(raw))
    with pytest.raises(ArtifactMismatchError, match="does not match its hash"):
        artifacts.check(d, "sentiment", 1)
    with pytest.raises(ArtifactMismatchError, match="invalid model kind/name"):
        store.path("sentiment", "../elsewhere")


def test_old_artifacts_load_and_are_migrated(tmp_path, sentiment_model, caplog):
    """A developer's cache from before the document: a bare fluency pickle and a sentiment
    folder without adpilot-artifact.json load, say so, and are discovered afterwards."""
    from adpilot.tuning.registry import ModelRegistry

    store = ModelStore(tmp_path)
    lm, _ = packaged_reference_lm("zh")
    lm.save(tmp_path / "charlm-zh-20000.pkl")  # the old format: a bare pickle
    d = sentiment_model.save(store.path("sentiment", "polarity-en-quick"))
    assert (d / METADATA_FILE).is_file()  # a model saved now carries its document
    (d / METADATA_FILE).unlink()  # the old format: a folder without it
    assert store.list() == []
    with caplog.at_level(logging.INFO, logger="adpilot"):
        migrated = load_reference_lm("zh", 20000, store)
    assert "format version 0" in caplog.text
    assert migrated.perplexity("质量很好") == pytest.approx(lm.perplexity("质量很好"))
    assert not (tmp_path / "charlm-zh-20000.pkl").exists()
    assert (store.path("fluency", "zh-20000") / METADATA_FILE).is_file()

    reg = ModelRegistry(tmp_path)
    reg.discover()
    entries = {e.ref: e for e in reg.list()}
    assert set(entries) == {"fluency-zh-20000:1", "sentiment-polarity-en-quick:1"}
    sent = entries["sentiment-polarity-en-quick:1"]
    assert sent.kind == "sentiment" and sent.config["lang"] == "en"
    assert sent.data_hash == sentiment_model.data_sha256_[:16]
    assert (d / METADATA_FILE).is_file()


# Code outside adpilot.artifacts that may still join a folder onto the models folder, and why.
PATH_EXCEPTIONS = {
    "tuning/base.py": "converted base models (hf/), not trained artifacts",
    "backends/llm/models.py": "downloaded base GGUF files, not trained artifacts",
}


def test_model_paths_come_from_one_place():
    pattern = re.compile(r"models_dir\)?\s*/|sentiment-\{|charlm-\{lang\}|\"attractiveness\"\s*/")
    offenders = []
    for f in sorted(SRC.rglob("*.py")):
        rel = f.relative_to(SRC).as_posix()
        if rel in ("artifacts.py", "scoring/fluency.py") or rel in PATH_EXCEPTIONS:
            continue  # fluency.py names its old file only to migrate it
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line) and not line.lstrip().startswith(("#", '"', "`")):
                offenders.append(f"{rel}:{i}: {line.strip()}")
    assert offenders == [], "model paths built outside ModelStore:\n" + "\n".join(offenders)


def test_old_attractiveness_folder_loads_and_is_discovered(tmp_path, shared_data, data_sources):
    """An attractiveness folder of the old form (adpilot.json, no document) loads the same."""
    from adpilot.datasets import load_dataset
    from adpilot.scoring.attractiveness import (
        AttractivenessModel,
        default_model_dir,
        is_saved,
        load_default_model,
    )
    from adpilot.scoring.pairs import arms_from_upworthy, make_pairs

    store = ModelStore(tmp_path)
    arms = arms_from_upworthy(load_dataset("upworthy", data_sources).tables["upworthy"].head(2000))
    pairs = make_pairs(arms)
    model = AttractivenessModel(embedder="lsa", finetune_epochs=0).fit(pairs)
    folder = model.save(default_model_dir(store))
    assert folder == tmp_path / "attractiveness"
    doc = artifacts.load_metadata(folder)
    (folder / METADATA_FILE).unlink()  # rewrite it as an older adpilot did
    (folder / "adpilot.json").write_text(json.dumps(
        {"artifact": "attractiveness", "config": doc.config, "data_hash": doc.data_hash,
         "n_pairs": doc.extra["n_pairs"], "metrics": doc.metrics}))
    assert is_saved(folder) and store.list() == []
    texts = pairs["text_a"].head(10).tolist()
    old = load_default_model(store=store)
    assert (old.score(texts) == model.score(texts)).all()

    assert store.migrate_legacy() == [folder]
    assert [m.kind for m in store.list()] == ["attractiveness"]
    assert (AttractivenessModel.load(folder).score(texts) == model.score(texts)).all()
