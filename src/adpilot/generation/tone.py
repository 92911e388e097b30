"""Does a sentence read like an unhappy customer's review? A small lexical classifier trained
on real reviews (``online_shopping_10_cats`` for Chinese, Women's clothing ratings 1-2 vs 4-5
for English) backs the ``complaint`` guardrail: copy written from reviews must not echo what
unhappy reviewers said (「品质不稳定，还很难吃」, "runs small and the seams ripped").

Training is an explicit step: :func:`ensure_complaint_models` fits it from the public review
sets (:func:`adpilot.datasets.load_dataset`: data folder, download cache or download) in a few
seconds into the model store (``store.path("complaint", lang)``, an :mod:`adpilot.artifacts`
folder); ``adpilot run``, the copy studio and ``adpilot models fetch`` call it. The check itself
(:func:`complaint_probability`) only loads: without a trained model it falls back to the
opinion-word lexicon of :mod:`adpilot.profiling.aspects` (a sentence with more negative than
positive opinion words is a complaint) and says so once."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from adpilot import artifacts
from adpilot.artifacts import ModelStore
from adpilot.data import columns as C

if TYPE_CHECKING:
    from adpilot.datasets_fetch import DataSources

log = logging.getLogger(__name__)

# P(complaint) above which a statement is flagged (questions are not judged: reviews and ads
# both ask them). Checked on the 40-product evaluation's 300 candidate sentences: at 0.8 it
# flags 6 of 119 Chinese statements (4 echoed complaints, 2 harmless service lines), no English
# ones; it misses milder echoes, so it narrows the problem rather than solving it.
THRESHOLD = 0.8
MAX_TRAIN = 20_000  # rows per language: plenty for a lexical model, seconds to fit
KIND = "complaint"  # the complaint classifiers in the model store
FORMAT_VERSION = 1  # 0: complaint-<lang>.pkl, a pickled {"data_hash", "model"} dict
MODEL_FILE = "model.pkl"
LANGS = ("en", "zh")
DATASETS = {"en": "womens_clothing", "zh": "online_shopping_zh"}
FIX = "run `adpilot models fetch complaint` (trains it from the public review sets)"


def _training_rows(lang: str, sources: DataSources) -> tuple[list[str], np.ndarray]:
    """Review texts and 1 = negative, from the canonical tables of the public sets (raises
    :class:`~adpilot.datasets_fetch.DatasetUnavailableError` when the set cannot be had)."""
    from adpilot.datasets import load_dataset

    if lang == "zh":
        df = load_dataset("online_shopping_zh", sources).tables["reviews"].dropna(subset=[C.TEXT, C.POLARITY])
        texts, negative = df[C.TEXT].astype(str).str.lstrip("\ufeff"), df[C.POLARITY] == 0
    else:
        df = load_dataset("womens_clothing", sources).tables["reviews"].dropna(subset=[C.TEXT, C.RATING])
        df = df[df[C.RATING] != 3]
        texts, negative = df[C.TEXT].astype(str), df[C.RATING] <= 2
    rows = pd.DataFrame({"text": texts, "y": negative.astype(int)})
    rows = rows.sample(min(MAX_TRAIN, len(rows)), random_state=0)
    return rows[C.TEXT].tolist(), rows["y"].to_numpy()


def _data_hash(texts: list[str], y: np.ndarray) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(pd.Series(texts), index=False)
                          .to_numpy().tobytes() + y.tobytes()).hexdigest()[:16]


def model_dir(lang: str, store: ModelStore) -> Path:
    """The folder of the ``lang`` classifier: ``store.path("complaint", lang)``."""
    return store.path(KIND, lang)


def _read(path: Path) -> Pipeline:
    with open(path, "rb") as fh:
        return pickle.load(fh)  # our own model file, written by _save


def _save(folder: Path, model: Pipeline, lang: str, data_hash: str | None,
          metrics: dict | None = None) -> Path:
    """Write ``folder/model.pkl`` and its document, atomically (a reader sees old or new)."""
    folder.mkdir(parents=True, exist_ok=True)
    # one temporary name per process and thread: two builds at once must not share it
    tmp = folder / f".{MODEL_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "wb") as fh:
        pickle.dump(model, fh)
    tmp.replace(folder / MODEL_FILE)
    artifacts.save_metadata(folder, KIND, FORMAT_VERSION, data_hash=data_hash,
                            config={"lang": lang, "max_train": MAX_TRAIN, "threshold": THRESHOLD,
                                    "dataset": DATASETS.get(lang, DATASETS["en"])},
                            metrics=metrics, extra={"base_model": "TF-IDF + logistic regression"})
    return folder


_LOADED: dict[tuple[str, int], Pipeline] = {}  # (model file, its mtime) -> model


def load_complaint_model(lang: str, store: ModelStore) -> Pipeline | None:
    """The trained classifier in the store (its document checked), or None when it is not
    built. A pickle of an older version (``complaint-<lang>.pkl``) is migrated on first load."""
    folder = model_dir(lang, store)
    path = folder / MODEL_FILE
    if not path.is_file():
        legacy = folder.parent / f"{KIND}-{lang}.pkl"  # format version 0
        if not legacy.is_file():
            return None
        with open(legacy, "rb") as fh:
            cached = pickle.load(fh)  # written by an older adpilot's build_complaint_model
        log.info("%s: a pickled dict (format version 0); migrated to %s", legacy, folder)
        _save(folder, cached["model"], lang, cached.get("data_hash"))
        legacy.unlink()
    artifacts.check(folder, KIND, FORMAT_VERSION)
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _LOADED:
        _LOADED[key] = _read(path)
    return _LOADED[key]


def migrate_legacy(store: ModelStore) -> list[Path]:
    """Move every old ``complaint-<lang>.pkl`` in ``store`` into its artifact folder."""
    done = []
    for legacy in sorted(store.root.glob(f"{KIND}-*.pkl")):
        lang = legacy.stem.removeprefix(f"{KIND}-")
        if lang in DATASETS and load_complaint_model(lang, store) is not None:
            done.append(model_dir(lang, store))
    return done


# (lang, data hash) -> a model fitted in this process: another model store gets a copy written
# instead of a second 10-20 s fit (the data are still read, so a store is only written when
# they can be had)
_FITTED: dict[tuple[str, str], Pipeline] = {}
_CHECKED: set[str] = set()  # folders found up to date in this process: not read again
_UNAVAILABLE: dict[str, BaseException] = {}  # folder -> why ensure could not build it


def ensure_complaint_models(store: ModelStore, langs: Sequence[str] = LANGS, *,
                            sources: DataSources,
                            progress: Callable[[str, int, int], None] | None = None
                            ) -> dict[str, Path]:
    """Train the ``langs`` classifiers that are not in ``store`` or whose training rows (from
    ``sources``) changed (10-20 s each on 2 cores; each training is logged with what and why);
    return their folders.
    Raises :class:`~adpilot.datasets_fetch.DatasetUnavailableError` without the data (the check
    then runs its stated lexical fallback)."""
    from adpilot.datasets_fetch import ChecksumError, DatasetUnavailableError
    from adpilot.profiling.baseline import tfidf_classifier

    out = {}
    for i, lang in enumerate(langs):
        folder = model_dir(lang, store)
        if str(folder) not in _CHECKED or not (folder / MODEL_FILE).is_file():
            try:
                texts, y = _training_rows(lang, sources)
            except (DatasetUnavailableError, ChecksumError) as exc:
                _UNAVAILABLE[str(folder)] = exc
                raise
            _UNAVAILABLE.pop(str(folder), None)
            digest = _data_hash(texts, y)
            meta = (artifacts.load_metadata(folder)
                    if load_complaint_model(lang, store) is not None else None)
            if meta is None or meta.data_hash != digest:
                why = "no model in the store" if meta is None else "its training data changed"
                model = _FITTED.get((lang, digest))
                if model is None:
                    log.info("training the complaint model (%s) for the complaint guardrail: "
                             "%d reviews of %s, %.1f%% negative (%s)", lang, len(y),
                             DATASETS.get(lang, DATASETS["en"]), 100 * y.mean(), why)
                    model = _FITTED[(lang, digest)] = tfidf_classifier(lang).fit(texts, y)
                _save(folder, model, lang, digest,
                      {"n_train": int(len(y)), "negative_share": round(float(y.mean()), 4)})
            _CHECKED.add(str(folder))
        if progress:
            progress("complaint models", i + 1, len(langs))
        out[lang] = folder
    return out


def complaint_model(lang: str, store: ModelStore) -> Pipeline | None:
    """The trained classifier for ``lang``, or None (and a stated fallback) when there is none
    (see :func:`ensure_complaint_models`); never trains."""
    from adpilot import fallbacks

    model = load_complaint_model(lang, store)
    if model is None:
        folder = model_dir(lang, store)
        exc = _UNAVAILABLE.get(str(folder))
        fallbacks.note(f"complaint guardrail ({lang})", "an opinion-word lexicon check",
                       fallbacks.unavailable_reason(exc) if exc is not None
                       else f"no complaint model in {folder.parent}",
                       FIX + " or set ADPILOT_DATA_DIR")
    return model


def lexical_complaint(sentences: list[str], lang: str) -> np.ndarray:
    """1.0 for a sentence with more negative than positive opinion words (negation counted),
    else 0.0: the complaint check when no model can be trained."""
    from adpilot.profiling.aspects import clause_opinion

    counts = clause_opinion(pd.Series(sentences, dtype="string").str.lower(), lang)
    return ((counts["neg"] > counts["pos"]) & (counts["neg"] > 0)).to_numpy(dtype=float)


def complaint_probability(sentences: list[str], lang: str,
                          store: ModelStore | None) -> np.ndarray:
    """P(the sentence is a complaint) per sentence: the model in ``store``, or the lexical
    check's 0/1 (a stated fallback) when it holds none or no store is given (None)."""
    if not sentences:
        return np.zeros(0)
    if store is None:
        from adpilot import fallbacks

        fallbacks.note(f"complaint guardrail ({lang})", "an opinion-word lexicon check",
                       "no model store given (the caller passed none)",
                       "pass the ModelStore of the settings (GuardContext(store=...), "
                       "CopyGenerator(store=...))")
        return lexical_complaint(sentences, lang)
    model = complaint_model(lang, store)
    if model is None:
        return lexical_complaint(sentences, lang)
    return model.predict_proba(sentences)[:, 1]
