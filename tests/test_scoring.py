"""Scoring: the reference LM, text measures, A/B pairs, the attractiveness model, the
scorecard and best-of-N selection."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adpilot import artifacts
from adpilot.cli import main
from adpilot.datasets import load_dataset
from adpilot.errors import ArtifactMismatchError, NotFittedError
from adpilot.scoring import text_metrics as tm
from adpilot.scoring.attractiveness import AttractivenessModel, time_split
from adpilot.scoring.fluency import CharNgramLM
from adpilot.scoring.pairs import arms_from_upworthy, make_pairs
from adpilot.scoring.scorecard import Scorecard, best_of


@pytest.fixture(scope="module")
def upworthy_pairs(shared_data, data_sources):
    return make_pairs(arms_from_upworthy(load_dataset("upworthy", data_sources).tables["upworthy"]))


def test_char_lm_prefers_real_text(shared_data, data_sources):
    reviews = load_dataset("womens_clothing", data_sources).tables["reviews"]["text"].head(3000)
    lm = CharNgramLM().fit(reviews.tolist())
    good = lm.perplexity("This dress fits well and the fabric feels soft.")
    bad = lm.perplexity("sfot fablirc eht dwell fits dsers siTh.")
    assert good < bad / 2
    zh = CharNgramLM().fit(load_dataset("online_shopping_zh", data_sources).tables["reviews"]["text"]
                           .head(3000).tolist())
    assert zh.perplexity("质量很好，物流也很快。") < zh.perplexity("快也流物，好很量质。")


def test_text_measures():
    assert tm.distinct_n(["a b c", "a b c"], 1) == pytest.approx(0.5)
    sb = tm.self_bleu(["the dress fits well today", "the dress fits well today",
                       "totally different words here now"])
    assert sb[0] > 0.9 and sb[2] < 0.1
    easy, _ = tm.readability("The cat sat on the mat. It was warm.", "en")
    hard, _ = tm.readability("Notwithstanding considerable institutional heterogeneity, "
                             "organisational accountability mechanisms proliferate.", "en")
    assert easy > hard
    assert tm.rouge_l("面料很舒服", ["面料舒服"]) > 0.8
    assert tm.bleu("the dress fits well", ["the dress fits well"]) == pytest.approx(1.0)


def test_pairs_from_upworthy(upworthy_pairs):
    p = upworthy_pairs
    assert (p["text_a"] != p["text_b"]).all() and (p["ctr_a"] != p["ctr_b"]).all()
    assert set(p["label"]) == {0, 1}
    assert ((p["ctr_a"] > p["ctr_b"]).astype(int) == p["label"]).all()
    assert len(p) > 10000 and (p["z"] >= 0).all()


def test_attractiveness_fit_save_load(upworthy_pairs, tmp_path):
    train, test = time_split(upworthy_pairs)
    model = AttractivenessModel(embedder="lsa", finetune_epochs=0).fit(train.head(3000))
    with pytest.raises(NotFittedError):
        AttractivenessModel().score(["x"])
    result = model.evaluate(test.head(2000))
    assert result["pairs"] == 2000 and result["pairwise_accuracy"] > 0.5
    p = model.prob_a_beats_b(["A headline"], ["Another one"])
    q = model.prob_a_beats_b(["Another one"], ["A headline"])
    assert p[0] + q[0] == pytest.approx(1.0)  # no side bias
    folder = model.save(tmp_path / "m")
    again = AttractivenessModel.load(folder)
    texts = test["text_a"].head(20).tolist()
    assert np.allclose(again.score(texts), model.score(texts))
    meta = json.loads((folder / "adpilot-artifact.json").read_text())
    meta["kind"] = "sentiment"
    (folder / "adpilot-artifact.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactMismatchError, match="not 'attractiveness'"):
        AttractivenessModel.load(folder)


def test_attractiveness_finetuned_scorer(upworthy_pairs, tmp_path):
    """The fine-tuned MiniLM path on a tiny subset of real pairs: it trains, blends with the
    linear scorer, keeps the no-side-bias property and survives save/load."""
    pytest.importorskip("torch")
    train, _ = time_split(upworthy_pairs)
    tiny = train[train["test_id"].isin(train["test_id"].unique()[:20])]
    model = AttractivenessModel(embedder="lsa", finetune_epochs=1, finetune_weight=0.5,
                                max_length=24).fit(tiny)
    texts = tiny["text_a"].head(8).tolist()
    lin, ft = model.linear_score(texts), model.finetuned_score(texts)
    assert np.allclose(model.score(texts), 0.5 * lin + 0.5 * ft)
    assert ft.std() > 0  # the head learned something text-dependent
    p = model.prob_a_beats_b(texts[:1], texts[1:2])[0]
    assert p + model.prob_a_beats_b(texts[1:2], texts[:1])[0] == pytest.approx(1.0)
    again = AttractivenessModel.load(model.save(tmp_path / "m"))
    assert np.allclose(again.score(texts), model.score(texts), atol=1e-5)
    (tmp_path / "m" / "siamese.safetensors").unlink()
    with pytest.raises(ArtifactMismatchError, match="siamese.safetensors is missing"):
        AttractivenessModel.load(tmp_path / "m")


def test_attract_train_cli_seed_ensemble(upworthy_pairs, tmp_path, capsys):
    """--finetune-seeds K: K fine-tuned scorers (seeds seed … seed+K−1) whose mean score is the
    fine-tuned part of the blend; all K are saved, needed to load, and stale ones removed."""
    pytest.importorskip("torch")
    train, _ = time_split(upworthy_pairs)
    tiny = train[train["test_id"].isin(train["test_id"].unique()[:12])]
    data = tmp_path / "pairs.csv"
    tiny[["text_a", "text_b", "label", "z"]].to_csv(data, index=False)
    code = main(["attract", "train", "--data", str(data), "--out", str(tmp_path / "m"),
                 "--finetune-epochs", "1", "--finetune-seeds", "2", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["pairs"] == len(tiny)
    model = AttractivenessModel.load(tmp_path / "m")
    assert model.finetune_seeds == 2 and [m.seed for m in model.siamese_] == [0, 1]
    texts = tiny["text_a"].head(8).tolist()
    each = [m.score(texts) for m in model.siamese_]
    assert not np.allclose(each[0], each[1])  # two seeds, two different scorers
    ft = model.finetuned_score(texts)
    assert np.allclose(ft, (each[0] + each[1]) / 2)
    b = model.finetune_weight
    assert np.allclose(model.score(texts), (1 - b) * model.linear_score(texts) + b * ft)
    # one scorer saved into the same folder: the second file goes, the model loads with one
    model.finetune_seeds, model.siamese_ = 1, model.siamese_[:1]
    model.save(tmp_path / "m")
    assert not (tmp_path / "m" / "siamese-1.safetensors").exists()
    assert np.allclose(AttractivenessModel.load(tmp_path / "m").finetuned_score(texts), each[0],
                       atol=1e-5)
    model.finetune_seeds = 2  # config says two, only one file: refused
    doc = artifacts.load_metadata(tmp_path / "m")
    artifacts.save_metadata(tmp_path / "m", doc.kind, doc.format_version,
                            config=model.config(), data_hash=doc.data_hash, extra=doc.extra)
    with pytest.raises(ArtifactMismatchError, match="siamese-1.safetensors is missing"):
        AttractivenessModel.load(tmp_path / "m")


def test_scorecard_explains_and_ranks(shared_data):
    product = {"title": "Linen Wrap Midi Dress", "category": "dresses",
               "description": "100% linen, relaxed fit, side pockets."}
    audience = {"top_categories": "dresses, knitwear", "summary": "likes linen dresses"}

    def no_free(text: str) -> list[str]:
        return ["banned claim: free"] if "free" in text.lower() else []

    copies = ["Our linen wrap dress keeps you cool all summer: relaxed fit, side pockets.",
              "Quarterly earnings beat expectations as the central bank held rates.",
              "Get this dress for FREE today!"]
    card = Scorecard(guardrails=[no_free], embedder="lsa").score(copies, product=product,
                                                                   audience=audience)
    assert card.loc[0, "relevance_product"] > card.loc[1, "relevance_product"]
    assert card.loc[2, "compliance"] == 0 and card.loc[2, "overall"] == 0
    assert "dresses" in card.loc[2, "why_personalisation"] or card.loc[0, "personalisation"] >= 0
    assert card["why_fluency"].str.contains("perplexity").all()
    assert best_of(card) == 0


def test_score_cli_json(tmp_path, capsys):
    copies = tmp_path / "copies.txt"
    copies.write_text("Soft merino that keeps you warm.\n柔软的美利奴羊毛，保暖又舒适。\n",
                      encoding="utf-8")
    code = main(["score", "--copy", str(copies), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and len(out["copies"]) == 2
    assert {"fluency", "readability", "diversity", "tone", "overall"} <= set(out["copies"][0])
    assert out["copies"][1]["why_readability"].endswith("characters per sentence")


def test_self_bleu_samples_references_on_large_sets():
    from adpilot.scoring.text_metrics import self_bleu

    same = ["soft linen shirt for warm summer days"] * 150
    varied = [f"copy number {i} about item {i * 7} in colour {i % 13}" for i in range(150)]
    assert min(self_bleu(same)) > 0.99
    scores = self_bleu(varied, max_references=20)
    assert len(scores) == 150 and max(scores) < 0.9
    assert scores == self_bleu(varied, max_references=20)  # fixed seed: reproducible
