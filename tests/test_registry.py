"""The model registry: versions, promotion, discovery of the sentiment and attractiveness models
saved in the model cache, and the `adpilot models` commands."""

from __future__ import annotations

import json
import threading

import pytest

from adpilot.artifacts import ModelStore
from adpilot.cli import main
from adpilot.config import get_settings
from adpilot.errors import ConfigError, NotFoundError
from adpilot.tuning.registry import ModelRegistry, promoted_generator_dir


def test_versions_count_up_and_the_same_artifact_is_not_added_twice(tmp_path):
    reg = ModelRegistry(tmp_path / "models")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    e1 = reg.register("copy-sft", "generator", a, base_model="gemma", data_hash="h1",
                      config={"lr": 1}, metrics={"train": {"loss": 2.0}})
    e2 = reg.register("copy-sft", "generator", b, data_hash="h2")
    again = reg.register("copy-sft", "generator", a, data_hash="h1", metrics={"eval": {"ppl": 3}})
    assert (e1.ref, e2.ref, again.ref) == ("copy-sft:1", "copy-sft:2", "copy-sft:1")
    assert reg.get("copy-sft:1").metrics == {"train": {"loss": 2.0}, "eval": {"ppl": 3}}
    assert reg.get("copy-sft").ref == "copy-sft:2"  # a bare name is its latest version
    assert reg.get(str(a)).ref == "copy-sft:1"      # so is a path
    with pytest.raises(NotFoundError, match="no registered model 'nope'"):
        reg.get("nope")
    with pytest.raises(ConfigError, match="'kind' parameter of ModelRegistry.register must be one of"):
        reg.register("x", "vision", a)


def test_promotion_is_one_per_kind_and_survives_reopening(tmp_path):
    reg = ModelRegistry(tmp_path)
    dirs = [tmp_path / f"m{i}" for i in range(3)]
    for d in dirs:
        d.mkdir()
    reg.register("gen", "generator", dirs[0])
    reg.register("gen", "generator", dirs[1], data_hash="other")
    reg.register("attractiveness", "attractiveness", dirs[2])
    reg.promote("attractiveness")
    reg.promote("gen:1")
    reg.promote("gen:2")
    fresh = ModelRegistry(tmp_path)
    assert [e.ref for e in fresh.list() if e.promoted] == ["gen:2", "attractiveness:1"]
    assert promoted_generator_dir(fresh) == dirs[1].resolve()
    dirs[0].rmdir()
    with pytest.raises(NotFoundError, match="its files are gone"):
        fresh.promote("gen:1")


def test_concurrent_registrations_lose_nothing(tmp_path):
    reg = ModelRegistry(tmp_path)
    threads = [threading.Thread(target=reg.register, args=("m", "generator", tmp_path / f"d{i}"),
                                kwargs={"data_hash": str(i)}) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(e.version for e in reg.list()) == list(range(1, 13))


def test_discovers_the_saved_sentiment_and_attractiveness_models(shared_data, data_sources):
    from adpilot.datasets import load_dataset
    from adpilot.profiling.sentiment import SentimentModel, default_model_dir
    from adpilot.scoring.attractiveness import AttractivenessModel
    from adpilot.scoring.attractiveness import default_model_dir as attract_dir
    from adpilot.scoring.pairs import arms_from_upworthy, make_pairs

    reviews = (load_dataset("womens_clothing", data_sources).tables["reviews"]
               .dropna(subset=["text"]).head(300))
    SentimentModel("rating", "en", backbone="none").fit(
        reviews["text"].tolist(), reviews["rating"].astype(int).tolist()
    ).save(default_model_dir("rating", "en", get_settings().models_dir))
    arms = arms_from_upworthy(load_dataset("upworthy", data_sources).tables["upworthy"].head(2000))
    pairs = make_pairs(arms)
    AttractivenessModel(embedder="lsa", finetune_epochs=0).fit(pairs).save(
        attract_dir(ModelStore(get_settings().models_dir)))
    reg = ModelRegistry(get_settings().models_dir)
    reg.discover()
    reg.discover()  # idempotent
    entries = {e.ref: e for e in reg.list()}
    assert set(entries) == {"sentiment-rating-en:1", "attractiveness:1"}
    sent = entries["sentiment-rating-en:1"]
    assert sent.kind == "sentiment" and sent.config["task"] == "rating" and sent.data_hash
    att = entries["attractiveness:1"]
    assert att.data_hash and att.config["embedder"] == "lsa" and att.metrics["n_pairs"] == len(pairs)
    assert reg.folder == get_settings().models_dir


def test_models_cli_list_show_promote(tmp_path, capsys):
    d = tmp_path / "model"
    d.mkdir()
    ModelRegistry(get_settings().models_dir).register(
        "copy-sft", "generator", d, base_model="gemma3-270m-q4_k_m", data_hash="abc",
        metrics={"eval": {"perplexity_tuned": 3.2}})
    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [e["ref"] for e in listed] == ["copy-sft:1"] and listed[0]["promoted"] is False
    assert main(["models", "promote", "copy-sft:1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["promoted"] is True
    assert main(["models", "show", "copy-sft"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["metrics"]["eval"]["perplexity_tuned"] == 3.2 and shown["base_model"] == "gemma3-270m-q4_k_m"
    assert main(["models", "list"]) == 0
    assert "copy-sft:1" in capsys.readouterr().out
    assert main(["models", "promote", "missing:3"]) == 2
    assert "no registered model" in capsys.readouterr().err
