"""Fluency as perplexity under a reference language model: a character n-gram model with
interpolated absolute discounting, trained per language on real text (reviews, headlines).

Character models suit both languages (Chinese has no spaces) and score a thousand short copies
in well under a second; counting uses scikit-learn's C-level vectoriser.
"""

from __future__ import annotations

import hashlib
import logging
import math
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from adpilot import artifacts
from adpilot.data import columns as C

if TYPE_CHECKING:
    from adpilot.datasets_fetch import DataSources

log = logging.getLogger(__name__)
KIND = "fluency"  # the reference character LMs in the model store
FORMAT_VERSION = 1  # 0: a bare pickle, charlm-<lang>-<n>.pkl
MODEL_FILE = "model.pkl"

BOS, EOS = "\x02", "\x03"


@dataclass
class CharNgramLM:
    """P(c | h) = max(n(hc) − d, 0) / n(h·) + d · N1+(h·) / n(h·) · P(c | h'), order ``order``."""

    order: int = 4
    discount: float = 0.75
    counts_: dict = field(default_factory=dict, repr=False)
    context_: dict = field(default_factory=dict, repr=False)
    vocab_size_: int = 0

    def fit(self, texts: list[str] | pd.Series) -> CharNgramLM:
        from sklearn.feature_extraction.text import CountVectorizer

        docs = [BOS * (self.order - 1) + str(t) + EOS for t in texts]
        vec = CountVectorizer(analyzer="char", ngram_range=(1, self.order), lowercase=False,
                              dtype=np.int64)
        totals = np.asarray(vec.fit_transform(docs).sum(axis=0)).ravel()
        grams = pd.Series(totals, index=vec.get_feature_names_out())
        self.counts_ = grams.to_dict()
        prefix = pd.Series(grams.index.str[:-1], index=grams.index)
        by_prefix = pd.DataFrame({"prefix": prefix.to_numpy(), "n": grams.to_numpy()}).groupby(
            "prefix")["n"].agg(["sum", "size"])
        # zip over whole columns, not iterrows: 690k contexts for Chinese (87 s -> under 1 s)
        sums, sizes = by_prefix["sum"].astype(int).tolist(), by_prefix["size"].astype(int).tolist()
        self.context_ = dict(zip(by_prefix.index, zip(sums, sizes, strict=True), strict=True))
        self.vocab_size_ = int((grams.index.str.len() == 1).sum())
        return self

    def _prob(self, history: str, char: str) -> float:
        if not history:
            total, _ = self.context_.get("", (1, 1))
            return (self.counts_.get(char, 0) + 1) / (total + self.vocab_size_ + 1)
        lower = self._prob(history[1:], char)
        ctx = self.context_.get(history)
        if ctx is None:
            return lower
        total, distinct = ctx
        c = self.counts_.get(history + char, 0)
        return max(c - self.discount, 0) / total + self.discount * distinct / total * lower

    def perplexity(self, text: str) -> float:
        padded = BOS * (self.order - 1) + text + EOS
        logp = 0.0
        n = 0
        for i in range(self.order - 1, len(padded)):
            logp += math.log(self._prob(padded[i - self.order + 1:i], padded[i]))
            n += 1
        return math.exp(-logp / max(n, 1))

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            pickle.dump(self, fh)

    @classmethod
    def load(cls, path: str | Path) -> CharNgramLM:
        with open(path, "rb") as fh:
            model = pickle.load(fh)  # our own cache file, written by save()
        if not isinstance(model, cls):
            raise TypeError(f"{path} does not hold a CharNgramLM")
        return model

    def save_artifact(self, folder: str | Path, *, config: dict | None = None,
                      data_hash: str | None = None) -> Path:
        """Write ``folder/model.pkl`` and its ``adpilot-artifact.json`` (kind ``fluency``)."""
        folder = Path(folder)
        self.save(folder / MODEL_FILE)
        artifacts.save_metadata(folder, KIND, FORMAT_VERSION,
                                config={"order": self.order, "discount": self.discount,
                                        **(config or {})}, data_hash=data_hash,
                                extra={"base_model": f"character {self.order}-gram LM"})
        return folder

    @classmethod
    def load_artifact(cls, folder: str | Path) -> CharNgramLM:
        """Load a folder written by :meth:`save_artifact` (checked by its document)."""
        folder = Path(folder)
        artifacts.check(folder, KIND, FORMAT_VERSION)
        return cls.load(folder / MODEL_FILE)


FIX = "run `adpilot models fetch fluency` (trains it from the public data sets)"
_UNAVAILABLE: dict[str, BaseException] = {}  # folder -> why ensure could not build it
_FITTED: dict[tuple[str, str], CharNgramLM] = {}  # (lang, training rows' hash) -> model
_CHECKED: set[str] = set()  # folders ensured in this process: not loaded again to check


def reference_lm(lang: str, *, store: artifacts.ModelStore | None,
                 max_texts: int = 20000) -> CharNgramLM:
    """The reference model for ``lang`` from ``store`` (built by :func:`ensure_reference_lms`);
    never trains. Without it (or with no store, None), a small reference from the package's
    own sample texts, a stated fallback (the real reference is used as soon as it is built)."""
    model = load_reference_lm(lang, max_texts, store) if store is not None else None
    if model is not None:
        return model
    from adpilot import fallbacks

    fallback, n = packaged_reference_lm(lang)
    instead = (f"a small reference LM from the {n} built-in sample texts (perplexities are "
               "rougher than with the public corpus)")
    if store is None:
        fallbacks.note(f"fluency ({lang})", instead, "no model store given (the caller passed "
                       "none)", "pass the ModelStore of the settings (Scorecard(store=...))")
        return fallback
    folder = reference_dir(lang, max_texts, store=store)
    exc = _UNAVAILABLE.get(str(folder))
    fallbacks.note(f"fluency ({lang})", instead,
                   fallbacks.unavailable_reason(exc) if exc is not None
                   else f"no reference LM in {folder.parent}", FIX + " or set ADPILOT_DATA_DIR")
    return fallback


def ensure_reference_lms(store: artifacts.ModelStore, langs: Sequence[str] = ("en", "zh"), *,
                         sources: DataSources, max_texts: int = 20000, seed: int = 0,
                         progress: Callable[[str, int, int], None] | None = None
                         ) -> dict[str, Path]:
    """Train the reference models of ``langs`` that are not in ``store`` yet from the data
    sets of ``sources`` (seconds each; each training is logged); return their folders. Raises
    :class:`~adpilot.datasets_fetch.DatasetUnavailableError` without the data (scorecards then
    use the stated fallback of :func:`reference_lm`)."""
    from adpilot.datasets_fetch import ChecksumError, DatasetUnavailableError

    out = {}
    for i, lang in enumerate(langs):
        folder = reference_dir(lang, max_texts, store=store)
        if str(folder) in _CHECKED and (folder / MODEL_FILE).is_file():
            out[lang] = folder
            continue
        try:
            build_reference_lm(lang, sources=sources, max_texts=max_texts, seed=seed,
                               store=store)
        except (DatasetUnavailableError, ChecksumError) as exc:
            _UNAVAILABLE[str(folder)] = exc
            raise
        _UNAVAILABLE.pop(str(folder), None)
        _CHECKED.add(str(folder))
        if progress:
            progress("fluency references", i + 1, len(langs))
        out[lang] = folder
    return out


def reference_dir(lang: str, max_texts: int = 20000, *,
                  store: artifacts.ModelStore) -> Path:
    """The reference model's folder: ``store.path("fluency", "<lang>-<max_texts>")``."""
    return store.path(KIND, f"{lang}-{max_texts}")


def load_reference_lm(lang: str, max_texts: int,
                      store: artifacts.ModelStore) -> CharNgramLM | None:
    """The cached reference model, or None when it is not built. A bare pickle of an older
    version (``charlm-<lang>-<n>.pkl``) is migrated to the artifact folder on first load."""
    folder = reference_dir(lang, max_texts, store=store)
    if (folder / MODEL_FILE).is_file():
        return CharNgramLM.load_artifact(folder)
    legacy = folder.parent / f"charlm-{lang}-{max_texts}.pkl"  # format version 0
    if legacy.is_file():
        model = CharNgramLM.load(legacy)
        log.info("%s: a bare pickle (format version 0); migrated to %s", legacy, folder)
        model.save_artifact(folder, config={"lang": lang, "max_texts": max_texts})
        legacy.unlink()
        return model
    return None


def migrate_legacy(store: artifacts.ModelStore) -> list[Path]:
    """Move every bare ``charlm-<lang>-<n>.pkl`` in ``store`` into its artifact folder."""
    done = []
    for legacy in sorted(store.root.glob("charlm-*-*.pkl")):
        lang, _, n = legacy.stem.removeprefix("charlm-").rpartition("-")
        if lang and n.isdigit() and load_reference_lm(lang, int(n), store) is not None:
            done.append(reference_dir(lang, int(n), store=store))
    return done


def build_reference_lm(lang: str, *, sources: DataSources, store: artifacts.ModelStore,
                       max_texts: int = 20000, seed: int = 0) -> CharNgramLM:
    """Train (or load from the model cache) the reference model on the public data sets
    (found through ``sources``)."""
    from adpilot.datasets import load_dataset

    cached = load_reference_lm(lang, max_texts, store)
    if cached is not None:
        return cached
    if lang == "zh":
        texts = load_dataset("online_shopping_zh", sources).tables["reviews"][C.TEXT]
    else:
        reviews = load_dataset("womens_clothing", sources).tables["reviews"][C.TEXT]
        heads = load_dataset("upworthy", sources).tables["upworthy"]["headline"]
        texts = pd.concat([reviews, heads], ignore_index=True)
    texts = texts.dropna().sample(min(max_texts, len(texts)), random_state=seed)
    texts = texts.tolist()
    digest = hashlib.sha256("\n".join(map(str, texts)).encode()).hexdigest()
    model = _FITTED.get((lang, digest))
    if model is None:  # the same rows were fitted in this process already: save that model
        log.info("training the fluency reference LM (%s) for the scorecard's fluency score: "
                 "%d texts (no model in the store)", lang, len(texts))
        model = _FITTED[(lang, digest)] = CharNgramLM().fit(texts)
    model.save_artifact(reference_dir(lang, max_texts, store=store), data_hash=digest,
                        config={"lang": lang, "max_texts": max_texts, "seed": seed})
    return model


_PACKAGED: dict[str, tuple[CharNgramLM, int]] = {}


def packaged_reference_lm(lang: str) -> tuple[CharNgramLM, int]:
    """(model, number of texts): a character LM over the review titles and texts and product
    titles and descriptions of the built-in sample (written for adpilot) in ``lang``."""
    if lang not in _PACKAGED:
        from importlib import resources

        from adpilot.data.language import detect_language

        base = resources.files("adpilot") / "sample"
        texts: list[str] = []
        for name, cols in (("reviews.csv", ("title", "text")),
                           ("products.csv", ("title", "description"))):
            with resources.as_file(base / name) as f:
                frame = pd.read_csv(f, dtype=str)
            for col in cols:
                if col in frame:
                    texts += frame[col].dropna().tolist()
        series = pd.Series(texts, dtype=str)
        chosen = series[(detect_language(series) == lang).to_numpy()].tolist() or texts
        _PACKAGED[lang] = (CharNgramLM().fit(chosen), len(chosen))
    return _PACKAGED[lang]
