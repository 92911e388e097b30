"""Product recommendations for implicit feedback (purchases, clicks) and their evaluation.

Models, each ``fit(matrix, items=…)`` then ``scores(users)``: popularity, item-item
co-occurrence (cosine), matrix factorisation by alternating least squares (the ``implicit``
library), and content similarity of product texts (for items nobody has bought yet).
Metrics: precision@k, recall@k, NDCG@k and catalogue coverage, on a time or a per-user split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from adpilot.deps import require
from adpilot.errors import ConfigError, MissingColumnError

_BATCH = 2048  # users scored at a time: bounded memory on large catalogues


class Popularity:
    """Most-bought items first, the same list for everyone (the baseline)."""

    name = "popularity"

    def fit(self, matrix: sp.csr_matrix, **_) -> Popularity:
        self.counts_ = np.asarray((matrix > 0).sum(axis=0)).ravel().astype(float)
        return self

    def scores(self, matrix: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
        return np.tile(self.counts_, (len(users), 1))


class ItemCooccurrence:
    """Item-item cosine similarity of buyer sets; a user's score sums over their items."""

    name = "item_cooccurrence"

    def fit(self, matrix: sp.csr_matrix, **_) -> ItemCooccurrence:
        binary = (matrix > 0).astype(np.float32)
        norms = np.sqrt(np.asarray(binary.sum(axis=0)).ravel())
        norms[norms == 0] = 1
        scaled = binary @ sp.diags(1 / norms)
        sim = (scaled.T @ scaled).tocsr()
        sim.setdiag(0)
        sim.eliminate_zeros()
        self.similarity_ = sim
        self.popularity_ = np.asarray(binary.sum(axis=0)).ravel()
        return self

    def scores(self, matrix: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
        rows = (matrix[users] > 0).astype(np.float32)
        out = np.asarray((rows @ self.similarity_).todense())
        return out + 1e-6 * self.popularity_ / max(1.0, self.popularity_.max())  # tie-break


class ALS:
    """Implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008) via ``implicit``,
    with BM25 weighting of the interaction counts."""

    name = "als"

    def __init__(self, factors: int = 64, iterations: int = 20, regularization: float = 0.05,
                 seed: int = 0) -> None:
        self.factors, self.iterations = factors, iterations
        self.regularization, self.seed = regularization, seed

    def fit(self, matrix: sp.csr_matrix, **_) -> ALS:
        implicit = require("implicit", feature="ALS recommendations")
        from implicit.nearest_neighbours import bm25_weight
        from threadpoolctl import threadpool_limits

        weighted = bm25_weight(matrix.astype(np.float32), K1=100, B=0.8).tocsr()
        with threadpool_limits(1, "blas"):  # implicit parallelises itself; nested BLAS threads thrash
            self.model_ = implicit.als.AlternatingLeastSquares(
                factors=self.factors, iterations=self.iterations,
                regularization=self.regularization, random_state=self.seed,
                calculate_training_loss=False)
            self.model_.fit(weighted, show_progress=False)
        return self

    def scores(self, matrix: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
        uf = np.asarray(self.model_.user_factors)[users]
        return uf @ np.asarray(self.model_.item_factors).T


class ContentSimilarity:
    """Similarity of product texts to the texts of what the user bought; scores new items too."""

    name = "content"

    def __init__(self, embedder: str = "lsa") -> None:
        self.embedder = embedder

    def fit(self, matrix: sp.csr_matrix, *, item_texts: list[str] | None = None,
            **_) -> ContentSimilarity:
        if item_texts is None:
            raise ConfigError("ContentSimilarity needs item_texts (product titles/descriptions)")
        from adpilot.profiling.embeddings import get_embedder

        self.item_vectors_ = get_embedder(self.embedder).encode(item_texts)
        return self

    def scores(self, matrix: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
        profile = (matrix[users] > 0).astype(np.float32) @ self.item_vectors_
        return profile @ self.item_vectors_.T


MODELS = {"popularity": Popularity, "item_cooccurrence": ItemCooccurrence, "als": ALS,
          "content": ContentSimilarity}


def top_k(model, matrix: sp.csr_matrix, users: np.ndarray, k: int,
          exclude: sp.csr_matrix | None = None) -> np.ndarray:
    """Top-k item indices per user (best first), skipping items in ``exclude``."""
    out = np.empty((len(users), k), dtype=np.int64)
    for start in range(0, len(users), _BATCH):
        batch = users[start:start + _BATCH]
        s = model.scores(matrix, batch).astype(np.float64)
        if exclude is not None:
            ex = exclude[batch].tocoo()
            s[ex.row, ex.col] = -np.inf
        part = np.argpartition(-s, kth=min(k, s.shape[1] - 1) - 1, axis=1)[:, :k]
        order = np.take_along_axis(s, part, axis=1).argsort(axis=1)[:, ::-1]
        out[start:start + len(batch)] = np.take_along_axis(part, order, axis=1)
    return out


def ranking_metrics(recs: np.ndarray, relevant: sp.csr_matrix, users: np.ndarray, k: int,
                    n_items: int) -> dict:
    """precision@k, recall@k, NDCG@k (binary relevance), coverage of the catalogue."""
    hits = np.asarray(relevant[np.repeat(users, k), recs.ravel()]).reshape(len(users), k) > 0
    n_rel = np.asarray(relevant[users].sum(axis=1)).ravel().astype(np.int64)
    discounts = 1 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discounts).sum(axis=1)
    idcg = np.cumsum(discounts)[np.minimum(n_rel, k) - 1]
    return {"ndcg_at_k": float(np.mean(dcg / idcg)),
            "precision_at_k": float(hits.sum(axis=1).mean() / k),
            "recall_at_k": float(np.mean(hits.sum(axis=1) / n_rel)),
            "coverage": float(len(np.unique(recs)) / n_items), "users": int(len(users))}


@dataclass
class Split:
    train: sp.csr_matrix
    test: sp.csr_matrix
    users: np.ndarray  # evaluated users (interactions in both)
    user_ids: pd.Index
    item_ids: pd.Index


def split_interactions(frame: pd.DataFrame, *, user_col: str, item_col: str,
                       time_col: str | None = None, split: str = "time",
                       test_fraction: float = 0.2, seed: int = 0,
                       exclude_seen: bool = True) -> Split:
    """Interactions → user × item count matrices for training and testing.

    ``time``: everything after the (1 - test_fraction) time quantile is test;
    ``random``: each user's interactions are split at random. With ``exclude_seen`` the test
    set only counts items the user had not interacted with in training (new discoveries).
    """
    for col in [user_col, item_col] + ([time_col] if time_col else []):
        if col not in frame.columns:
            raise MissingColumnError(col, list(frame.columns))
    df = frame[[user_col, item_col] + ([time_col] if time_col else [])].dropna(
        subset=[user_col, item_col])
    df = df.assign(**{user_col: df[user_col].astype(str), item_col: df[item_col].astype(str)})
    users, u = np.unique(df[user_col].to_numpy(), return_inverse=True)
    items, i = np.unique(df[item_col].to_numpy(), return_inverse=True)
    if split == "time":
        if not time_col:
            raise ConfigError("a time split needs --time-col")
        t = pd.to_datetime(df[time_col], errors="coerce", utc=True)
        cutoff = t.quantile(1 - test_fraction)
        is_test = (t > cutoff).to_numpy()
    elif split == "random":
        rng = np.random.default_rng(seed)
        is_test = rng.random(len(df)) < test_fraction
    else:
        raise ConfigError(f"unknown split {split!r}; expected time or random")
    shape = (len(users), len(items))

    def matrix(mask):
        return sp.csr_matrix((np.ones(mask.sum(), dtype=np.float32), (u[mask], i[mask])),
                             shape=shape)

    train, test = matrix(~is_test), matrix(is_test)
    if exclude_seen:
        test = test - test.multiply(train > 0)
        test.eliminate_zeros()
    in_train = np.asarray(train.sum(axis=1)).ravel() > 0
    in_test = np.asarray(test.sum(axis=1)).ravel() > 0
    return Split(train, (test > 0).astype(np.float32).tocsr(), np.flatnonzero(in_train & in_test),
                 pd.Index(users), pd.Index(items))


def evaluate_recommenders(frame: pd.DataFrame, *, user_col: str, item_col: str,
                          time_col: str | None = None, split: str = "time", k: int = 10,
                          models: list[str] | None = None, item_texts: pd.Series | None = None,
                          exclude_seen: bool = True, seed: int = 0) -> dict:
    """Fit each model on the training part and score the test part with the same metrics."""
    s = split_interactions(frame, user_col=user_col, item_col=item_col, time_col=time_col,
                           split=split, seed=seed, exclude_seen=exclude_seen)
    names = models or ["popularity", "item_cooccurrence", "als"] + (
        ["content"] if item_texts is not None else [])
    texts = None
    if item_texts is not None:
        texts = item_texts.reindex(s.item_ids).fillna("").astype(str).tolist()
    results = {}
    for name in names:
        model = MODELS[name]() if name != "als" else ALS(seed=seed)
        model.fit(s.train, item_texts=texts)
        recs = top_k(model, s.train, s.users, k, exclude=s.train if exclude_seen else None)
        results[name] = ranking_metrics(recs, s.test, s.users, k, len(s.item_ids))
    best = max((n for n in results if n != "popularity"), key=lambda n: results[n]["ndcg_at_k"],
               default="popularity")
    keys = ("ndcg_at_k", "precision_at_k", "recall_at_k", "coverage")
    return {"model": best, **{key: results[best][key] for key in keys},
            "popularity": {key: results["popularity"][key] for key in keys}
            if "popularity" in results else None,
            "models": results, "k": k, "split": split, "exclude_seen": exclude_seen,
            "users_evaluated": int(len(s.users)), "items": int(len(s.item_ids)),
            "train_interactions": int(s.train.nnz), "test_interactions": int(s.test.nnz)}
