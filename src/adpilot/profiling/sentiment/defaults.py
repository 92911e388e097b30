"""The default sentiment models in the model cache: which they are and how they are trained,
where they live, the data split they are trained on, building them (quick by default, fully
fine-tuned on request) and loading them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adpilot.artifacts import ModelStore
from adpilot.data import columns as C
from adpilot.datasets_fetch import DataSources
from adpilot.errors import ConfigError, InputError
from adpilot.profiling.sentiment import artifact
from adpilot.profiling.sentiment.head import SentimentHeadModel, describe_saved
from adpilot.profiling.sentiment.model import SentimentModel

# Default models trained by `ensure_default_models`: (task, lang) -> data set and fit settings.
# English rating: all MiniLM layers fine-tuned (37 min on 2 cores; 1.6 points of accuracy and
# 2.6 of macro-F1 over freezing the lower 4 layers), + TF-IDF. English polarity: the lower 4
# layers frozen and cached (it meets its bar that way, and `adpilot run` trains it on first use).
# Chinese: character TF-IDF + LR only; MiniLM's vocabulary maps 65 % of Chinese characters to
# [UNK], and fine-tuning new character embeddings does not fit a 2-core CPU budget.
DEFAULT_MODELS: dict[tuple[str, str], dict[str, Any]] = {
    # rating: all layers fine-tuned; a words-only TF-IDF half (as good on validation, cheaper)
    ("rating", "en"): {"dataset": "womens_clothing",
                       "params": {"epochs": 2, "freeze_layers": 0, "lr": 6e-5,
                                  "tfidf_char_ngrams": False}},
    ("polarity", "en"): {"dataset": "womens_clothing",
                         "params": {"epochs": 1, "freeze_layers": 4, "lr": 1e-4}},
    ("polarity", "zh"): {"dataset": "online_shopping_zh", "params": {"backbone": "none"}},
}

# The quick defaults built by `ensure_default_models` (English; Chinese is TF-IDF only and
# cheap already). Chosen with evaluation/sentiment_first_run.py: see its results file.
QUICK_MODELS: dict[tuple[str, str], dict[str, Any]] = {
    ("rating", "en"): {"max_head_train": 2000, "val_fraction": 0.06, "tfidf_char_ngrams": False},
    ("polarity", "en"): {"max_head_train": 2000, "val_fraction": 0.06},
}
SPLIT_SEED = 42
TEST_SIZE = 0.2


FETCH_COMMAND = "adpilot models fetch sentiment"  # the command that builds the defaults


def _store(store: ModelStore | str | Path) -> ModelStore:
    return store if isinstance(store, ModelStore) else ModelStore(store)


def default_model_dir(task: str, lang: str, store: ModelStore | str | Path) -> Path:
    """Where the default ``task``/``lang`` model lives: ``store.path("sentiment",
    "<task>-<lang>")``."""
    return _store(store).path(artifact.KIND, f"{task}-{lang}")


def quick_model_dir(task: str, lang: str, store: ModelStore | str | Path) -> Path:
    """Where the quick default lives (:class:`~.head.SentimentHeadModel`)."""
    return _store(store).path(artifact.KIND, f"{task}-{lang}-quick")


def default_dir_in(models_dir: str | Path | ModelStore, task: str, lang: str) -> Path:
    """The default's folder in ``models_dir``: the fully fine-tuned one when it is there, else
    the quick one (for workers handed a models folder)."""
    full = default_model_dir(task, lang, _store(models_dir))
    return full if (full / "meta.json").is_file() else quick_model_dir(task, lang,
                                                                       _store(models_dir))


def cached_default_dir(task: str, lang: str, store: ModelStore | str | Path) -> Path | None:
    """The cached default: the fully fine-tuned model when there is one, else the quick one."""
    d = default_dir_in(_store(store), task, lang)
    return d if (d / "meta.json").is_file() else None


def source_label(tasks: Sequence[tuple[str, str]], store: ModelStore | str | Path) -> str:
    """``model (polarity; en: quick: …; zh: TF-IDF + LR)``: which defaults in ``store`` score."""
    parts = []
    for task, lang in tasks:
        d = cached_default_dir(task, lang, store)
        meta = json.loads((d / "meta.json").read_text()) if d else {}
        parts.append(f"{lang}: {describe_saved(meta) if d else 'not built'}")
    return f"model ({tasks[0][0]}; " + "; ".join(parts) + ")"


def default_split(task: str, lang: str, sources: DataSources | str | Path
                  ) -> tuple[tuple[list[str], np.ndarray], tuple[list[str], np.ndarray]]:
    """``(train, test)`` texts and raw labels for the default ``task``/``lang`` model, its data
    set from ``sources`` (:class:`~adpilot.datasets_fetch.DataSources`, or the file itself).

    The defaults are trained on the 80 % side of a stratified split (seed 42) of their data set,
    so the evaluation's test numbers are the numbers of the model that ships. The split is made
    on the rating (all rows), so a polarity model never sees a test review through its 3-star
    neighbours; polarity drops the 3s afterwards.
    """
    from sklearn.model_selection import train_test_split

    from adpilot.datasets import load_dataset

    if (task, lang) not in DEFAULT_MODELS:
        raise ConfigError(f"no default sentiment model for task={task!r}, lang={lang!r}; "
                          f"defaults: {', '.join(f'{t}/{lg}' for t, lg in DEFAULT_MODELS)}")
    name = DEFAULT_MODELS[(task, lang)]["dataset"]
    reviews = load_dataset(name, sources).tables["reviews"]
    label_col = "polarity" if name == "online_shopping_zh" else "rating"
    frame = reviews.dropna(subset=[C.TEXT, label_col]).reset_index(drop=True)
    texts = review_texts(frame) if label_col == "rating" else frame[C.TEXT].astype(str).tolist()
    labels = frame[label_col].astype(int).to_numpy()
    tr, te = train_test_split(np.arange(len(frame)), test_size=TEST_SIZE, random_state=SPLIT_SEED,
                              stratify=labels)
    return ([texts[i] for i in tr], labels[tr]), ([texts[i] for i in te], labels[te])


def review_texts(reviews: pd.DataFrame) -> list[str]:
    """Model input for canonical reviews: ``title. text`` (the title often states the verdict)."""
    text = reviews[C.TEXT].fillna("").astype(str)
    if "title" in reviews:
        title = reviews[C.TITLE].fillna("").astype(str)
        text = np.where(title.str.len() > 0, title + ". " + text, text)
    return list(text)


def ensure_default_models(tasks: Sequence[tuple[str, str]] | None = None, *,
                          store: ModelStore | str | Path, sources: DataSources,
                          progress: Callable[[str, int, int], None] | None = None,
                          device: str = "auto", num_threads: int | None = None,
                          full: bool = False) -> dict[tuple[str, str], Path]:
    """Build the default models that are not in the cache yet; return their folders.

    By default the quick kind (:data:`QUICK_MODELS`: a minute or two on 2 cores);
    ``full=True`` fine-tunes (``DEFAULT_MODELS``: 11-37 min each). A fully fine-tuned model in
    the cache is always the one returned. A finished model is never retrained. Fine-tuning
    checkpoints every 200 steps in ``<dir>.partial``, so an interrupted run resumes there.
    ``store``: the model store; ``sources``: where the training data sets come from;
    ``progress(name, done, total)``.
    """
    store = _store(store)
    out = {}
    for task, lang in tasks or list(DEFAULT_MODELS):
        cached = cached_default_dir(task, lang, store)
        if cached is not None and (not full or cached == default_model_dir(task, lang, store)):
            out[(task, lang)] = cached
            continue
        quick = not full and (task, lang) in QUICK_MODELS
        target = (quick_model_dir if quick else default_model_dir)(task, lang, store)
        (texts, labels), _ = default_split(task, lang, sources)
        name = f"{task}/{lang}"
        partial = target.with_name(target.name + ".partial")
        cls, params = ((SentimentHeadModel, {**QUICK_MODELS[(task, lang)], "embedding_cache":
                        str(target.parent / "embeddings-minilm")}) if quick
                       else (SentimentModel, DEFAULT_MODELS[(task, lang)]["params"]))
        model = cls(task, lang, **params, device=device, num_threads=num_threads,
                    checkpoint_dir=str(partial))
        model.fit(texts, labels,
                  progress=(lambda d, t, _n=name: progress(_n, d, t)) if progress else None)
        tmp = target.with_name(target.name + ".tmp")
        model.save(tmp)
        artifact.write_document(tmp)
        if target.exists():  # a broken folder without meta.json: replace it
            shutil.rmtree(target)
        tmp.replace(target)
        if partial.is_dir() and not any(partial.iterdir()):
            partial.rmdir()
        out[(task, lang)] = target
    return out


def load_default_model(task: str = "rating", lang: str = "en", *,
                       store: ModelStore | str | Path, device: str = "auto",
                       precision: str = "fp32") -> SentimentModel:
    """The default model in ``store``; raises :class:`InputError` with the command that builds
    it. ``precision``: what the shell read (``ADPILOT_SENTIMENT_PRECISION``)."""
    d = cached_default_dir(task, lang, store)
    if d is None:
        raise InputError(f"no default sentiment model for {task}/{lang} in "
                         f"{_store(store).root}; build it with: {FETCH_COMMAND}")
    return SentimentModel.load(d, task=task, lang=lang, device=device, precision=precision)
