"""Sentiment models on real review texts with a tiny real BERT (built from a config in a second)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from adpilot.errors import ArtifactMismatchError, ConfigError, InputError, NotFittedError
from adpilot.profiling.sentiment import (
    SentimentModel,
    default_model_dir,
    ensure_default_models,
    load_default_model,
    task_labels,
)

pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def reviews(shared_data) -> pd.DataFrame:
    """400 real English reviews (title + text) with their ratings: the first rows of the file."""
    df = pd.read_csv(shared_data / "reviews" / "womens_clothing_ecommerce_reviews.csv", nrows=500)
    df = df.dropna(subset=["Review Text"]).head(400)
    df["text"] = df["Title"].fillna("") + ". " + df["Review Text"]
    return df[["text", "Rating"]].reset_index(drop=True)


@pytest.fixture(scope="module")
def reviews_zh(shared_data) -> pd.DataFrame:
    df = pd.read_csv(shared_data / "reviews" / "online_shopping_10_cats_zh.csv")
    return df.dropna(subset=["review"]).sample(300, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory, reviews) -> str:
    """A 2-layer, 32-wide BERT with a WordPiece vocabulary trained on the real reviews."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(reviews["text"].tolist(),
                            trainers.WordPieceTrainer(vocab_size=800, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[(s, tok.token_to_id(s)) for s in ("[CLS]", "[SEP]")])
    fast = transformers.BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]",
                                          pad_token="[PAD]", cls_token="[CLS]",
                                          sep_token="[SEP]", mask_token="[MASK]")
    config = transformers.BertConfig(vocab_size=fast.vocab_size, hidden_size=32,
                                     num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=256)
    import torch

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-bert")
    transformers.BertModel(config).save_pretrained(path)
    fast.save_pretrained(path)
    return str(path)


def _model(backbone: str, **kw) -> SentimentModel:
    params = {"task": "rating", "lang": "en", "backbone": backbone, "max_steps": 6,
              "batch_size": 16, "lr": 1e-3, "num_threads": 1, "device": "cpu"}
    return SentimentModel(**{**params, **kw})


@pytest.fixture(scope="module")
def fitted(tiny_backbone, reviews) -> SentimentModel:
    return _model(tiny_backbone).fit(reviews["text"], reviews["Rating"])


def test_task_labels_map_ratings_to_polarity():
    y, keep = task_labels([1, 2, 3, 4, 5, None], "polarity")
    assert keep.tolist() == [True, True, False, True, True, False]
    assert y[keep].tolist() == [0, 0, 1, 1]
    y, keep = task_labels([0, 1, 1], "polarity")
    assert y.tolist() == [0, 1, 1] and keep.all()
    with pytest.raises(InputError):
        task_labels([0, 6], "rating")


def test_not_fitted_and_bad_params(reviews):
    with pytest.raises(NotFittedError):
        SentimentModel().predict(["nice dress"])
    with pytest.raises(ConfigError, match="'task' parameter of SentimentModel"):
        SentimentModel(task="stars").fit(reviews["text"], reviews["Rating"])
    with pytest.raises(ConfigError, match="'tfidf_weight'"):
        SentimentModel(tfidf_weight=2.0, backbone="none").fit(reviews["text"], reviews["Rating"])


def test_fit_predict_shapes_and_classes(fitted, reviews):
    texts = reviews["text"].tolist()[:50]
    proba = fitted.predict_proba(texts)
    assert proba.shape == (50, 5)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    assert fitted.classes_.tolist() == [1, 2, 3, 4, 5]
    pred = fitted.predict(texts)
    assert set(pred) <= {1, 2, 3, 4, 5}
    assert (pred == fitted.classes_[proba.argmax(1)]).all()
    assert fitted.transformer_ is not None and 0.0 <= fitted.weight_ <= 1.0
    assert {"val_tfidf", "val_transformer", "val_ensemble"} <= set(fitted.metrics_)
    # batching and length sorting must not change the result
    np.testing.assert_allclose(fitted.predict_proba(texts, batch_size=7), proba, atol=1e-5)


def test_zero_tfidf_weight_skips_the_lexical_half(fitted, reviews):
    import copy

    texts = reviews["text"].tolist()[:30]
    model = copy.copy(fitted)
    model.weight_ = 0.0
    model.tfidf_ = None  # would raise if the lexical half were still computed
    expected = fitted._adjust(fitted._proba_transformer(texts))
    np.testing.assert_allclose(model.predict_proba(texts), expected, atol=1e-9)


def test_class_weights_shift_probability_to_rare_ratings(tiny_backbone, reviews):
    from adpilot.profiling.sentiment.finetune import loss_weights

    target = np.array([0, 0, 0, 1, 4, 4, 4, 4])
    balanced = loss_weights("balanced", target, 5)
    np.testing.assert_allclose(balanced, [8 / 15, 8 / 5, 1, 1, 8 / 20])  # class 2, 3 absent: 1
    np.testing.assert_allclose(loss_weights("sqrt", target, 5), np.sqrt(balanced))
    assert loss_weights(None, target, 5) is None
    with pytest.raises(ConfigError, match="'class_weight'"):
        _model(tiny_backbone, class_weight="inverse").fit(reviews["text"], reviews["Rating"])

    texts = reviews["text"].tolist()
    plain, weighted = (_model(tiny_backbone, class_weight=w, max_steps=40).fit(
        texts, reviews["Rating"]) for w in (None, "balanced"))
    rare = [0, 1, 2]  # ratings 1-3 are a quarter of the reviews; 5 is over half
    # same seed, data and steps: only the loss weights differ, and they move mass to the rare
    mass_plain = plain._proba_transformer(texts)[:, rare].sum(1).mean()
    mass_weighted = weighted._proba_transformer(texts)[:, rare].sum(1).mean()
    assert mass_weighted > mass_plain + 0.05, (mass_weighted, mass_plain)  # 0.59 vs 0.46 here
    assert weighted.get_params()["class_weight"] == "balanced"


def test_save_load_round_trip(fitted, reviews, tmp_path):
    texts = reviews["text"].tolist()[:40]
    fitted.save(tmp_path / "m")
    loaded = SentimentModel.load(tmp_path / "m", task="rating", lang="en", device="cpu")
    np.testing.assert_allclose(loaded.predict_proba(texts), fitted.predict_proba(texts), atol=1e-6)
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    assert meta["data_sha256"] == fitted.data_sha256_ and len(meta["data_sha256"]) == 64
    assert meta["adpilot_version"] and "val_ensemble" in meta["metrics"]


def test_bf16_inference_agrees_with_fp32_and_keeps_the_fp32_model(fitted, reviews, tmp_path):
    texts = reviews["text"].tolist()[:60]
    fitted.save(tmp_path / "m")
    fp32 = SentimentModel.load(tmp_path / "m", device="cpu")
    bf16 = SentimentModel.load(tmp_path / "m", device="cpu", precision="bf16")
    p32, p16 = fp32.predict_proba(texts), bf16.predict_proba(texts)
    assert not np.array_equal(p32, p16)  # it really ran in bf16 ...
    np.testing.assert_allclose(p16, p32, atol=0.05)  # ... and stayed close to fp32
    assert (p16.argmax(1) == p32.argmax(1)).mean() >= 0.9
    assert next(bf16.transformer_.parameters()).dtype.is_floating_point  # the fitted model
    assert str(next(bf16.transformer_.parameters()).dtype) == "torch.float32"  # stays fp32
    with pytest.raises(ConfigError, match="'precision' parameter"):
        SentimentModel(precision="fp8", backbone="none").fit(reviews["text"], reviews["Rating"])


def test_cls_only_last_layer_gives_the_full_models_logits(fitted, reviews):
    import torch

    from adpilot.profiling.sentiment.encoder import cls_logits, pad, supports_cls_only

    net, tok = fitted.transformer_, fitted.tokenizer_
    assert supports_cls_only(net)
    enc = tok(reviews["text"].tolist()[:9], truncation=True, max_length=64)["input_ids"]
    inputs = pad(enc, tok.pad_token_id or 0, torch, "cpu")  # padded: the mask matters
    with torch.inference_mode():
        full = net(**inputs).logits
        fast = cls_logits(net, inputs["input_ids"], inputs["attention_mask"])
    assert full.shape == fast.shape
    torch.testing.assert_close(fast, full, atol=1e-5, rtol=1e-5)


def test_load_mismatch_fails_with_reason(fitted, tmp_path):
    d = fitted.save(tmp_path / "m")
    with pytest.raises(ArtifactMismatchError, match="not 'polarity'"):
        SentimentModel.load(d, task="polarity")
    with pytest.raises(ArtifactMismatchError, match="language is 'en', not 'zh'"):
        SentimentModel.load(d, lang="zh")

    tampered = tmp_path / "tampered"
    shutil.copytree(d, tampered)
    config = json.loads((tampered / "config.json").read_text())
    config["max_length"] = 512
    (tampered / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactMismatchError, match="config.json does not match"):
        SentimentModel.load(tampered)

    (tampered / "meta.json").unlink()
    with pytest.raises(ArtifactMismatchError, match="meta.json or config.json is missing"):
        SentimentModel.load(tampered)


def test_words_only_tfidf_half(reviews, tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer

    both = SentimentModel(backbone="none").fit(reviews["text"], reviews["Rating"])
    words = SentimentModel(backbone="none", tfidf_char_ngrams=False).fit(reviews["text"],
                                                                        reviews["Rating"])
    assert isinstance(words.tfidf_.named_steps["tfidf"], TfidfVectorizer)  # no char n-grams
    assert not isinstance(both.tfidf_.named_steps["tfidf"], TfidfVectorizer)  # words + chars
    loaded = SentimentModel.load(words.save(tmp_path / "w"))
    assert loaded.tfidf_char_ngrams is False
    np.testing.assert_allclose(loaded.predict_proba(reviews["text"][:20]),
                               words.predict_proba(reviews["text"][:20]))


def test_polarity_from_ratings_and_tfidf_only(reviews):
    model = SentimentModel(task="polarity", backbone="none").fit(reviews["text"], reviews["Rating"])
    assert model.classes_.tolist() == [0, 1] and model.transformer_ is None
    assert model.n_train_ == int((reviews["Rating"] != 3).sum())
    score = model.score(reviews["text"], reviews["Rating"])  # 3s left out when scoring too
    assert score["n"] == model.n_train_ and score["accuracy"] > 0.8


def test_chinese_extends_vocabulary(tiny_backbone, reviews_zh):
    model = _model(tiny_backbone, task="polarity", lang="auto", max_steps=2)
    model.fit(reviews_zh["review"], reviews_zh["label"])
    assert model.lang_ == "zh"
    vocab_before = transformers.AutoTokenizer.from_pretrained(tiny_backbone).vocab_size
    assert len(model.tokenizer_) > vocab_before + 100  # CJK characters were added
    ids = model.tokenizer_("质量很好")["input_ids"]
    assert model.tokenizer_.unk_token_id not in ids
    assert model.predict_proba(reviews_zh["review"][:5]).shape == (5, 2)


def test_frozen_layers_are_cached_and_unchanged(tiny_backbone, reviews):
    import torch

    from adpilot.profiling.sentiment.encoder import lower_forward, pad, upper_forward

    model = _model(tiny_backbone, freeze_layers=1).fit(reviews["text"], reviews["Rating"])
    net = model.transformer_
    before = transformers.AutoModel.from_pretrained(tiny_backbone)
    # the frozen embeddings and lower layer kept their pretrained weights
    assert torch.equal(net.base_model.encoder.layer[0].output.dense.weight,
                       before.encoder.layer[0].output.dense.weight)
    assert not torch.equal(net.base_model.encoder.layer[1].output.dense.weight,
                           before.encoder.layer[1].output.dense.weight)
    # the split forward used in training equals the full forward used in prediction
    enc = model.tokenizer_(reviews["text"].tolist()[:4])["input_ids"]
    inputs = pad(enc, model.tokenizer_.pad_token_id, torch, "cpu")
    with torch.inference_mode():
        full = net(**inputs).logits
        hidden = lower_forward(net, inputs["input_ids"], inputs["attention_mask"], 1)
        split = upper_forward(net, hidden, inputs["attention_mask"], 1)
    torch.testing.assert_close(full, split)


def test_interrupted_fine_tuning_resumes_from_checkpoint(tiny_backbone, reviews, tmp_path):
    ckpt = tmp_path / "ckpt"
    seen: list[int] = []

    def stop_at_3(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    model = _model(tiny_backbone, checkpoint_dir=str(ckpt), checkpoint_every=2)
    with pytest.raises(KeyboardInterrupt):
        model.fit(reviews["text"], reviews["Rating"], progress=stop_at_3)
    assert (ckpt / "checkpoint.pt").is_file()
    model.fit(reviews["text"], reviews["Rating"], progress=lambda d, t: seen.append(d))
    assert seen[0] == 2 and seen[-1] == 6  # resumed after step 2, did not start over
    assert not (ckpt / "checkpoint.pt").exists()


def test_default_models_are_never_retrained(fitted, tmp_path):
    from adpilot.artifacts import ModelStore
    from adpilot.datasets_fetch import DataSources

    store = ModelStore(tmp_path / "models")
    with pytest.raises(InputError, match="adpilot models fetch sentiment"):
        load_default_model("rating", "en", store=store)
    fitted.save(default_model_dir("rating", "en", store))
    # a cached model is returned as is: no data is read (none can be: an empty offline
    # source), nothing is trained
    nothing = DataSources(cache_dir=tmp_path / "empty", offline=True)
    paths = ensure_default_models([("rating", "en")], store=store, sources=nothing)
    assert paths[("rating", "en")] == default_model_dir("rating", "en", store)
    assert load_default_model("rating", "en", store=store).data_sha256_ == fitted.data_sha256_


def test_cli_train_eval_predict(tiny_backbone, reviews, tmp_path):
    import typer
    from typer.testing import CliRunner

    from adpilot.cli import sentiment

    cli = typer.Typer()
    cli.add_typer(sentiment.app, name="sentiment")
    runner = CliRunner()
    data = tmp_path / "reviews.csv"
    reviews.rename(columns={"Rating": "stars"}).to_csv(data, index=False)
    out = tmp_path / "model"

    res = runner.invoke(cli, ["sentiment", "train", "--data", str(data), "--text-col", "text",
                              "--label-col", "stars", "--task", "polarity", "--lang", "en",
                              "--out", str(out), "--backbone", tiny_backbone, "--max-steps", "3",
                              "--tfidf-weight", "0", "--class-weight", "sqrt", "--no-char-ngrams",
                              "--device", "cpu", "--json"])
    assert res.exit_code == 0, res.output
    assert (out / "meta.json").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["class_weight"] == "sqrt" and config["tfidf_char_ngrams"] is False
    assert json.loads(res.stdout)["tfidf_weight"] == 0.0  # the transformer alone, as asked

    # two rows without text: not used, and counted and named rather than dropped silently
    gappy = tmp_path / "gappy.csv"
    frame = reviews.rename(columns={"Rating": "stars"}).assign(title="")
    frame.loc[[4, 9], "text"] = ["", None]
    frame.to_csv(gappy, index=False)
    res = runner.invoke(cli, ["sentiment", "eval", "--model", str(out), "--data", str(gappy),
                              "--text-col", "title,text", "--label-col", "stars", "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    assert result["rows_read"] == len(reviews) and result["skipped_no_text"] == 2
    assert "data rows 5, 10" in " ".join(res.stderr.split())
    kept = reviews.drop(index=[4, 9])
    assert result["n"] == int((kept["Rating"] != 3).sum())  # the 3s: no polarity label
    assert result["skipped_label"] == int((kept["Rating"] == 3).sum())
    assert 0 <= result["accuracy"] <= 1 and 0 <= result["macro_f1"] <= 1

    res = runner.invoke(cli, ["sentiment", "predict", "--model", str(out), "--text",
                              "Love it, fits perfectly", "--text", "Cheap fabric, returned it",
                              "--json"])
    assert res.exit_code == 0, res.output
    preds = json.loads(res.stdout)["predictions"]
    assert [set(p["proba"]) for p in preds] == [{"0", "1"}] * 2
    assert all(p["label"] in (0, 1) for p in preds)
