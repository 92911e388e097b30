"""The quick sentiment model: a logistic-regression head over frozen MiniLM sentence embeddings,
averaged with the TF-IDF half, as :class:`~adpilot.profiling.sentiment.SentimentModel` averages
its fine-tuned transformer with it.

Why: fine-tuning MiniLM for the English defaults costs 11-37 min on 2 quiet cores (40 min on a
busy machine), which a first ``adpilot run`` cannot afford. Encoding a few thousand reviews once
with the frozen encoder and fitting a linear head on them costs a minute or two; the TF-IDF half
still sees every training review. The accuracy given up is measured by
``evaluation/sentiment_first_run.py`` (``evaluation/results/sentiment_first_run.md``); the full
fine-tune stays one command away (``adpilot sentiment train-defaults --full``) and is preferred
whenever it is in the cache.

The head sees a uniform pseudo-random subsample of the training texts (``max_head_train``; the
texts whose sha256 is smallest, so the subsample does not depend on row order and nested sizes
share their texts). Embeddings of training texts can be cached on disk (``embedding_cache``):
an interrupted build, or the next candidate of a study, does not encode the same review twice.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adpilot.deps import require
from adpilot.devices import resolve_device, set_threads
from adpilot.profiling.embeddings import minilm_path
from adpilot.profiling.sentiment.model import SentimentModel

EMBED_DIM = 384
CHUNK = 256  # texts per encode call: the unit of progress and of the disk cache's shards


def text_keys(texts: Sequence[str], salt: str) -> list[bytes]:
    """16-byte keys of ``texts`` under ``salt`` (the encoder and its settings)."""
    return [hashlib.sha256(f"{salt}\x1f{t}".encode()).digest()[:16] for t in texts]


def hash_subsample(texts: Sequence[str], n: int | None) -> np.ndarray:
    """Indices of ``n`` texts chosen uniformly at random but reproducibly: those whose sha256 is
    smallest (independent of row order; a smaller ``n`` takes a subset of a larger one)."""
    if n is None or n >= len(texts):
        return np.arange(len(texts))
    digests = np.array([hashlib.sha256(str(t).encode()).hexdigest() for t in texts])
    return np.sort(np.argsort(digests, kind="stable")[:n])


class EmbeddingCache:
    """Text embeddings on disk: append-only ``.npz`` shards of (keys, vectors) in a folder.

    A shard is written to a temporary name and renamed, so an interrupted build leaves only
    whole shards; every shard written before the interruption is reused."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._store: dict[bytes, np.ndarray] = {}
        for shard in sorted(self.folder.glob("*.npz")):
            with np.load(shard) as data:
                self._store.update(zip(data["keys"].tolist(), data["vecs"], strict=True))

    def __len__(self) -> int:
        return len(self._store)

    def get(self, key: bytes) -> np.ndarray | None:
        return self._store.get(key)

    def add(self, keys: list[bytes], vecs: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        tmp = self.folder / f"{name}.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=np.array(keys, dtype="S16"), vecs=vecs.astype(np.float32))
        tmp.replace(self.folder / f"{name}.npz")
        self._store.update(zip(keys, vecs, strict=True))


class MiniLMEncoder:
    """Frozen all-MiniLM-L6-v2 sentence embeddings (384-d, L2-normalised), length-sorted chunks,
    with a progress callback and an optional disk cache."""

    def __init__(self, path: str, *, max_length: int = 128, batch_size: int = 64,
                 device: str = "cpu", num_threads: int | None = None) -> None:
        self.path, self.max_length, self.batch_size = path, max_length, batch_size
        self.device, self.num_threads = device, num_threads
        self.salt = f"{Path(path).name}|{max_length}|fp32"
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            st = require("sentence_transformers", feature="the quick sentiment model")
            transformers = require("transformers")
            transformers.utils.logging.disable_progress_bar()  # our own bar says what happens
            self._model = st.SentenceTransformer(self.path, device=self.device)
            self._model.max_seq_length = self.max_length
        return self._model

    def encode(self, texts: Sequence[str], *, cache: EmbeddingCache | None = None,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embeddings of ``texts``; ``progress(n)`` after each chunk with the texts done."""
        set_threads(self.num_threads)
        out = np.zeros((len(texts), EMBED_DIM), dtype=np.float32)
        keys = text_keys(texts, self.salt) if cache is not None else None
        todo = []
        for i in range(len(texts)):
            hit = cache.get(keys[i]) if keys is not None else None
            if hit is None:
                todo.append(i)
            else:
                out[i] = hit
        done = len(texts) - len(todo)
        if progress:
            progress(done)
        order = sorted(todo, key=lambda i: len(texts[i]))  # similar lengths: little padding
        for start in range(0, len(order), CHUNK):
            idx = order[start:start + CHUNK]
            vecs = self._load().encode([texts[i] for i in idx], batch_size=self.batch_size,
                                       normalize_embeddings=True, convert_to_numpy=True,
                                       show_progress_bar=False)
            out[idx] = vecs
            if cache is not None:
                cache.add([keys[i] for i in idx], vecs)
            done += len(idx)
            if progress:
                progress(done)
        return out


class SentimentHeadModel(SentimentModel):
    """:class:`SentimentModel` whose transformer half is a logistic-regression head over frozen
    MiniLM sentence embeddings instead of a fine-tuned network.

    Extra parameters
    ----------------
    head_C: inverse regularisation of the head (scikit-learn's ``C``).
    max_head_train: the head is fitted on at most this many training texts (a reproducible
        uniform subsample, see :func:`hash_subsample`); ``None``: all of them. The TF-IDF half
        always sees all of them.
    embedding_cache: a folder where embeddings are kept on disk, keyed by text (not part of the
        model; ``None``: no disk cache): a study or an interrupted build never encodes twice.

    Everything else (the TF-IDF half, the weight and class offsets chosen on the validation
    slice, save/load with metadata) is :class:`SentimentModel`'s.
    """

    _KIND = "SentimentHeadModel"
    _TRANSFORMER_FILE = "head.joblib"
    _CONFIG_KEYS = (*SentimentModel._CONFIG_KEYS, "head_C", "max_head_train")

    def __init__(self, task: str = "rating", lang: str = "auto", *, head_C: float = 1.0,
                 max_head_train: int | None = None, embedding_cache: str | None = None,
                 **params: Any) -> None:
        super().__init__(task, lang, **params)
        self.head_C = head_C
        self.max_head_train = max_head_train
        self.embedding_cache = embedding_cache

    def __repr__(self) -> str:
        return (f"SentimentHeadModel(task={self.task!r}, lang={self.lang!r}, "
                f"max_head_train={self.max_head_train!r})")

    def get_params(self) -> dict[str, Any]:
        return {**super().get_params(), "embedding_cache": self.embedding_cache}

    def fit(self, texts: Sequence[str], labels: Sequence[Any], *,
            progress: Callable[[int, int], None] | None = None) -> SentimentHeadModel:
        """Fit the TF-IDF half, encode the head's subsample, fit the head, calibrate on the
        validation slice. ``progress(done, total)`` counts texts encoded (subsample and
        validation slice)."""
        self._fit_progress = progress
        try:
            return super().fit(texts, labels, progress=progress)
        finally:  # the fit-time state is not part of the fitted model
            self._fit_progress = self._progress_state = None

    def _encoder(self) -> MiniLMEncoder:
        enc = getattr(self, "_encoder_", None)
        if enc is None:
            device = resolve_device(self.device, feature="transformer sentiment models")
            enc = MiniLMEncoder(self.backbone_, max_length=self.max_length, device=device,
                                num_threads=self.num_threads)
            self._encoder_ = enc
        return enc

    def _cache(self) -> EmbeddingCache | None:
        if not self.embedding_cache:
            return None
        cache = getattr(self, "_cache_", None)
        if cache is None or cache.folder != Path(self.embedding_cache):
            cache = self._cache_ = EmbeddingCache(self.embedding_cache)
        return cache

    def _fit_transformer(self, path: str, texts: list[str], y: np.ndarray,
                         progress: Callable[[int, int], None] | None) -> None:
        from sklearn.linear_model import LogisticRegression

        sub = hash_subsample(texts, self.max_head_train)
        n_val = self.n_train_ - len(texts)  # fit() holds out the validation slice first
        total = len(sub) + n_val
        x = self._encoder().encode([texts[i] for i in sub], cache=self._cache(),
                                   progress=(lambda d: progress(d, total)) if progress else None)
        head = LogisticRegression(C=self.head_C, max_iter=2000, random_state=self.seed)
        self.transformer_ = head.fit(x, y[sub])
        self.tokenizer_ = None
        self._progress_state = (len(sub), total)

    def _proba_transformer(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        progress = getattr(self, "_fit_progress", None)
        state = getattr(self, "_progress_state", None)
        report = None
        if progress and state is not None:  # the validation slice, during fit
            offset, total = state
            report = lambda d: progress(min(offset + d, total), total)  # noqa: E731
        x = self._encoder().encode(texts, cache=self._cache(), progress=report)
        p = self.transformer_.predict_proba(x)
        out = np.zeros((len(texts), len(self.classes_)))
        out[:, np.searchsorted(self.classes_, self.transformer_.classes_)] = p
        return out

    def quantize(self) -> SentimentHeadModel:
        """Nothing to quantise: the encoder is loaded per use and the head is linear."""
        return self

    def _save_transformer(self, d: Path) -> None:
        import joblib

        joblib.dump(self.transformer_, d / "head.joblib")

    def _load_transformer(self, d: Path, device: str) -> None:
        import joblib

        self.transformer_ = joblib.load(d / "head.joblib")
        self.tokenizer_ = None
        self.backbone_ = minilm_path() if self.backbone in ("auto", "minilm") else self.backbone


def describe_saved(meta: dict[str, Any]) -> str:
    """What a saved sentiment model is, in a few words, from its meta.json (reports, CLI)."""
    if meta.get("kind") == SentimentHeadModel._KIND:
        return "quick: LR head over frozen MiniLM embeddings + TF-IDF"
    return "fine-tuned MiniLM + TF-IDF" if meta.get("has_transformer") else "TF-IDF + LR"

