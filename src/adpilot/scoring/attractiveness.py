"""The attractiveness model (the discriminator): learns from real A/B outcomes which of two
variants of the same test gets the higher click-through rate.

A Bradley-Terry model: each copy gets a score s(x), and P(A beats B) = σ(s(A) − s(B)).
s is a blend of two Bradley-Terry scorers fitted on the same pairs:

- linear: s_lin(x) = w · φ(x), φ = sentence embedding (MiniLM) + headline features + binary
  bag of words; w is fitted by logistic regression on feature differences of real pairs,
  weighted by how much evidence each pair carries (its z statistic, capped), with both
  orientations so the model has no side bias;
- fine-tuned (``finetune_epochs`` > 0): MiniLM trained end to end as a siamese scorer with the
  same evidence-weighted pairwise loss (:mod:`adpilot.scoring.siamese`); with
  ``finetune_seeds`` = K > 1, K such scorers (seeds seed … seed+K−1) and s_ft the mean of their
  scores (each is a log-odds score from the same loss, so the mean keeps that unit; it lowers
  the seed-to-seed variance of fine-tuning).

s = (1 − finetune_weight) · s_lin + finetune_weight · s_ft. Saved with config, version, data
hash and metrics.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from adpilot import artifacts
from adpilot.errors import ArtifactMismatchError, NotFittedError
from adpilot.scoring.features import headline_features

if TYPE_CHECKING:
    from adpilot.datasets_fetch import DataSources

ARTIFACT = "attractiveness"
FORMAT_VERSION = 1  # 0: the metadata in adpilot.json (before adpilot-artifact.json)
LEGACY_FILE = "adpilot.json"
# progress(stage, done, total): what fit reports, stage by stage (the CLI renders it)
Progress = Callable[[str, int, int], None]
EMBED_CHUNK = 256  # headlines per encode call: the unit of progress


def data_hash(pairs: pd.DataFrame) -> str:
    cols = ["text_a", "text_b", "label"]
    return hashlib.sha256(pd.util.hash_pandas_object(pairs[cols], index=False).values.tobytes()
                          ).hexdigest()[:16]


@dataclass
class AttractivenessModel:
    """Pairwise CTR ranker. ``embedder``: ``minilm`` (default) or ``lsa`` for the linear part;
    ``finetune_epochs`` = 0 leaves out the fine-tuned MiniLM scorer (no torch training)."""

    embedder: str = "minilm"
    C: float = 0.03
    bow_weight: float = 0.3
    max_evidence: float = 3.0
    # chosen on a validation slice of the training period (attractiveness_validation.py)
    finetune_epochs: int = 2
    finetune_weight: float = 0.5
    finetune_lr: float = 3e-5
    max_length: int = 48
    backbone: str | None = None
    seed: int = 0
    # fine-tuned scorers averaged; 1 (over 2 or 3) on validation: the seed study of
    # attractiveness_validation.py, which also chose finetune_weight above
    finetune_seeds: int = 1
    metrics_: dict = field(default_factory=dict, init=False)

    def _embeddings(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        """Sentence embeddings, cached per text: fitting and evaluating see each text again.
        Encoded in chunks of similar length, each reported to ``progress``."""
        cache = self.__dict__.setdefault("_emb_cache", {})
        missing = sorted((t for t in dict.fromkeys(texts) if t not in cache), key=len)
        for start in range(0, len(missing), EMBED_CHUNK):
            chunk = missing[start:start + EMBED_CHUNK]
            cache.update(zip(chunk, self._embed.encode(chunk), strict=True))
            if progress:
                progress("embedding headlines", start + len(chunk), len(missing))
        return np.vstack([cache[t] for t in texts]) if texts else np.zeros((0, 1))

    def _phi(self, texts: list[str], progress: Progress | None = None) -> sp.csr_matrix:
        emb = self._embeddings(texts, progress)
        hand = (headline_features(texts) - self._hand_mean) / self._hand_std
        bow = self._bow.transform(texts) * self.bow_weight
        return sp.hstack([sp.csr_matrix(emb), sp.csr_matrix(hand), bow]).tocsr()

    def _siamese(self, index: int = 0):
        """The ``index``-th fine-tuned scorer of the seed ensemble (seed ``seed + index``)."""
        from adpilot.scoring.siamese import SiameseScorer

        return SiameseScorer(backbone=self.backbone, epochs=self.finetune_epochs,
                             lr=self.finetune_lr, max_length=self.max_length,
                             max_evidence=self.max_evidence, seed=self.seed + index)

    def _fit_siamese(self, pairs: pd.DataFrame, log=None, progress: Progress | None = None
                     ) -> list:
        out = []
        for i in range(self.finetune_seeds):
            if log is not None and self.finetune_seeds > 1:
                log(f"fine-tuning scorer {i + 1}/{self.finetune_seeds} (seed {self.seed + i})")
            stage = "fine-tuning MiniLM" + (f" {i + 1}/{self.finetune_seeds}"
                                            if self.finetune_seeds > 1 else "")
            step = (lambda d, t, _s=stage: progress(_s, d, t)) if progress else None
            out.append(self._siamese(i).fit(pairs, log=log, progress=step))
        return out

    def fit(self, pairs: pd.DataFrame, log=None, progress: Progress | None = None
            ) -> AttractivenessModel:
        """``pairs``: text_a, text_b, label (1 = a had the higher CTR), z (evidence), and
        test_id where known (the fine-tuned scorer batches whole tests).
        ``progress(stage, done, total)`` hears every stage: embedding the headlines, the
        linear fit, each fine-tuning step, scoring the training headlines."""
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.linear_model import LogisticRegression

        from adpilot.profiling.embeddings import get_embedder

        if self.finetune_seeds < 1:
            raise ValueError("finetune_seeds must be at least 1")
        texts = pd.Index(pd.concat([pairs["text_a"], pairs["text_b"]]).unique())
        self._embed = get_embedder(self.embedder)
        if hasattr(self._embed, "fit"):
            self._embed.fit(list(texts))
        hand = headline_features(list(texts))
        self._hand_mean, self._hand_std = hand.mean(axis=0), hand.std(axis=0) + 1e-9
        self._bow = CountVectorizer(min_df=3, binary=True).fit(list(texts))
        phi = self._phi(list(texts), progress)
        pos = pd.Series(np.arange(len(texts)), index=texts)
        diff = phi[pos[pairs["text_a"]].to_numpy()] - phi[pos[pairs["text_b"]].to_numpy()]
        y = pairs["label"].to_numpy()
        w = np.minimum(pairs.get("z", pd.Series(1.0, index=pairs.index)).to_numpy(),
                       self.max_evidence) + 0.1
        if progress:
            progress("fitting the linear scorer", 0, 1)
        self.clf_ = LogisticRegression(C=self.C, max_iter=3000, fit_intercept=False).fit(
            sp.vstack([diff, -diff]), np.concatenate([y, 1 - y]),
            sample_weight=np.concatenate([w, w]))
        if progress:
            progress("fitting the linear scorer", 1, 1)
        self.siamese_ = (self._fit_siamese(pairs, log=log, progress=progress)
                         if self.finetune_epochs > 0 else None)
        train_scores = self.score(list(texts), progress=progress)
        self.score_quantiles_ = np.quantile(train_scores, np.linspace(0, 1, 101))
        self.data_hash_ = data_hash(pairs)
        self.n_pairs_ = len(pairs)
        return self

    def _check(self) -> None:
        if not hasattr(self, "clf_"):
            raise NotFittedError("AttractivenessModel is not fitted yet; call fit or load.")

    def linear_score(self, texts: list[str]) -> np.ndarray:
        self._check()
        return np.asarray(self._phi([str(t) for t in texts]) @ self.clf_.coef_.ravel()).ravel()

    def finetuned_score(self, texts: list[str], progress: Progress | None = None
                        ) -> np.ndarray | None:
        """The fine-tuned part: the mean score of the seed ensemble (None when linear only)."""
        self._check()
        if self.siamese_ is None:
            return None
        texts = [str(t) for t in texts]
        step = (lambda d, t: progress("scoring with the fine-tuned MiniLM", d, t)
                ) if progress else None
        return np.mean([m.score(texts, progress=step) for m in self.siamese_], axis=0)

    def score(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        """Per copy: the Bradley-Terry score (differences are log-odds of winning)."""
        lin = self.linear_score(texts)
        ft = self.finetuned_score(texts, progress)
        if ft is None:
            return lin
        return (1 - self.finetune_weight) * lin + self.finetune_weight * ft

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        """Where each score falls among the training headlines (0-100)."""
        return np.interp(scores, self.score_quantiles_, np.arange(101))

    def prob_a_beats_b(self, text_a: list[str], text_b: list[str]) -> np.ndarray:
        d = self.score(list(text_a)) - self.score(list(text_b))
        return 1 / (1 + np.exp(-d))

    def evaluate(self, pairs: pd.DataFrame) -> dict:
        """Pairwise accuracy (and log loss) over the given pairs."""
        p = self.prob_a_beats_b(pairs["text_a"].tolist(), pairs["text_b"].tolist())
        y = pairs["label"].to_numpy()
        eps = 1e-9
        return {"pairs": int(len(pairs)), "pairwise_accuracy": float(np.mean((p > 0.5) == y)),
                "log_loss": float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))}

    # --- persistence -------------------------------------------------------------------------
    def config(self) -> dict:
        return {"embedder": self.embedder, "C": self.C, "bow_weight": self.bow_weight,
                "max_evidence": self.max_evidence, "finetune_epochs": self.finetune_epochs,
                "finetune_weight": self.finetune_weight, "finetune_lr": self.finetune_lr,
                "max_length": self.max_length, "backbone": self.backbone, "seed": self.seed,
                "finetune_seeds": self.finetune_seeds}

    def save(self, folder: str | Path) -> Path:
        """Write ``model.pkl``, the fine-tuned scorers and ``adpilot-artifact.json``."""
        self._check()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: getattr(self, k) for k in ("clf_", "_bow", "_hand_mean", "_hand_std",
                                               "score_quantiles_", "data_hash_", "n_pairs_")}
        if self.embedder == "lsa":
            state["_embed"] = self._embed  # fitted on the training texts
        with open(folder / "model.pkl", "wb") as fh:
            pickle.dump(state, fh)
        for stale in folder.glob("siamese-*.safetensors"):  # from an earlier, larger ensemble
            stale.unlink()
        if self.siamese_ is not None:
            from adpilot.scoring.siamese import weights_name

            for i, scorer in enumerate(self.siamese_):
                scorer.save(folder, weights_name(i))
        artifacts.save_metadata(folder, ARTIFACT, FORMAT_VERSION, config=self.config(),
                                data_hash=self.data_hash_, metrics=self.metrics_,
                                extra={"n_pairs": self.n_pairs_, "base_model":
                                       f"Bradley-Terry over {self.embedder} + features + BoW"})
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> AttractivenessModel:
        """Load a saved model; :class:`ArtifactMismatchError` with the reason when the folder is
        not an attractiveness model this version reads (old ``adpilot.json`` folders load)."""
        folder = Path(folder)
        meta = _read_meta(folder)
        # artifacts written before the fine-tuned scorer existed are linear only, those written
        # before its seed ensemble existed hold one fine-tuned scorer
        model = cls(**{"finetune_epochs": 0, "finetune_seeds": 1, **meta["config"]})
        with open(folder / "model.pkl", "rb") as fh:
            state = pickle.load(fh)  # written by save() above
        if state.get("data_hash_") != meta.get("data_hash"):
            raise ArtifactMismatchError(f"{folder}: model file and metadata disagree (data hash)")
        for k, v in state.items():
            setattr(model, k, v)
        if "_embed" not in state:
            from adpilot.profiling.embeddings import get_embedder

            model._embed = get_embedder(model.embedder)
        model.siamese_ = None
        if model.finetune_epochs > 0:
            from adpilot.scoring.siamese import weights_name

            names = [weights_name(i) for i in range(model.finetune_seeds)]
            for name in names:
                if not (folder / name).exists():
                    raise ArtifactMismatchError(f"{folder}: config has {len(names)} fine-tuned "
                                                f"scorer(s) but {name} is missing")
            model.siamese_ = [model._siamese(i).load_weights(folder, name)
                              for i, name in enumerate(names)]
        model.metrics_ = meta.get("metrics", {})
        return model


def time_split(pairs: pd.DataFrame, week: int = 201430) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Upworthy evaluation split: tests that started before ``week`` train, the rest test."""
    return (pairs[pairs["test_week"] < week].reset_index(drop=True),
            pairs[pairs["test_week"] >= week].reset_index(drop=True))


def _read_meta(folder: Path) -> dict:
    """``{config, data_hash, metrics}`` of a saved folder, from its document or (format
    version 0) its old ``adpilot.json``."""
    doc = artifacts.check(folder, ARTIFACT, FORMAT_VERSION)
    if doc.format_version > 0:
        return {"config": doc.config, "data_hash": doc.data_hash, "metrics": doc.metrics}
    legacy = folder / LEGACY_FILE
    if not legacy.is_file():
        raise ArtifactMismatchError(f"{folder} is not an adpilot model (neither "
                                    f"{artifacts.METADATA_FILE} nor {LEGACY_FILE})")
    meta = json.loads(legacy.read_text())
    if meta.get("artifact") != ARTIFACT:
        raise ArtifactMismatchError(
            f"{folder} holds a {meta.get('artifact')!r} artifact, not {ARTIFACT!r}")
    return meta


def is_saved(folder: str | Path) -> bool:
    """Whether ``folder`` holds a saved model (in either format)."""
    folder = Path(folder)
    return (folder / artifacts.METADATA_FILE).is_file() or (folder / LEGACY_FILE).is_file()


def migrate_legacy(store: artifacts.ModelStore) -> list[Path]:
    """Write the document of a model in ``store`` saved with only ``adpilot.json``."""
    folder = default_model_dir(store)
    if (folder / artifacts.METADATA_FILE).is_file() or not (folder / LEGACY_FILE).is_file():
        return []
    meta = json.loads((folder / LEGACY_FILE).read_text())
    if meta.get("artifact") != ARTIFACT:
        return []
    embedder = meta.get("config", {}).get("embedder", "?")
    artifacts.save_metadata(folder, ARTIFACT, FORMAT_VERSION, config=meta.get("config", {}),
                            data_hash=meta.get("data_hash"), metrics=meta.get("metrics", {}),
                            extra={"n_pairs": meta.get("n_pairs"), "base_model":
                                   f"Bradley-Terry over {embedder} + features + BoW"})
    return [folder]


def default_model_dir(store: artifacts.ModelStore) -> Path:
    """The default model's folder: ``store.path("attractiveness")``."""
    return store.path(ARTIFACT)


def load_default_model(*, store: artifacts.ModelStore | None,
                       note_fallback: bool = True) -> AttractivenessModel | None:
    """The trained model in ``store``, or None when none has been trained yet (``adpilot
    models fetch`` or ``adpilot attract train``) or no store is given (None); scorecards then
    leave attractiveness empty and weigh the other scores, a fallback stated once."""
    folder = default_model_dir(store) if store is not None else None
    if folder is not None and is_saved(folder):
        return AttractivenessModel.load(folder)
    if note_fallback:
        from adpilot import fallbacks

        fallbacks.note("attractiveness", "no attractiveness score (the overall score weighs "
                       "the other scores)", f"no trained model in {folder.parent}"
                       if folder is not None else "no model store given (the caller passed "
                       "none)", "run `adpilot models fetch` or `adpilot attract train`")
    return None


def build_default_model(*, sources: DataSources, store: artifacts.ModelStore, log=None,
                        finetune_epochs: int | None = None,
                        progress: Progress | None = None) -> Path:
    """Train the default model on the public Upworthy tests (all pairs, found through
    ``sources``) into the models cache unless it is there; return its folder. Raises
    :class:`~adpilot.datasets_fetch.DatasetUnavailableError` without the data."""
    from adpilot.datasets import load_dataset
    from adpilot.scoring.pairs import arms_from_upworthy, make_pairs

    folder = default_model_dir(store)
    if is_saved(folder):
        return folder
    pairs = make_pairs(arms_from_upworthy(load_dataset("upworthy", sources).tables["upworthy"]))
    opts = {} if finetune_epochs is None else {"finetune_epochs": finetune_epochs}
    model = AttractivenessModel(**opts).fit(pairs, log=log, progress=progress)
    model.metrics_ = {"train": model.evaluate(pairs)}
    return model.save(folder)
