"""The heavy stages as batch classes: built once per worker (models load in ``__init__``), then
called on batches. Each is batch-invariant (a row's output depends on that row only), so the
local and the Ray executor give the same rows.

Models are passed by *location* (``models_dir``: the same path on every node, e.g. a shared
volume or a cache populated before the run) or as fitted objects (LSA), which Ray ships to the
actors through its object store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from adpilot.data import columns as C

POLARITY_LANGS = ("en", "zh")


def _threads(n: int | None) -> None:
    if n:
        try:
            import torch

            torch.set_num_threads(n)
        except ImportError:
            pass


class SentimentStage:
    """Per-review polarity in [-1, 1]: ``model`` (the fine-tuned polarity models for English and
    Chinese under ``models_dir``, 2·P(positive) − 1) or ``rating`` ((r − 3) / 2).

    In: ``id``, ``text``, ``language`` (and ``rating``). Out: ``id``, ``polarity``.
    """

    def __init__(self, mode: str = "model", models_dir: str | None = None,
                 num_threads: int | None = 1, device: str = "cpu") -> None:
        self.mode = mode
        self.models = {}
        if mode == "model":
            from adpilot.profiling.sentiment import SentimentModel, default_dir_in

            _threads(num_threads)
            for lang in POLARITY_LANGS:
                model = SentimentModel.load(default_dir_in(models_dir, "polarity", lang),
                                            task="polarity", lang=lang, device=device)
                model.num_threads = num_threads
                self.models[lang] = model

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        batch = batch.reset_index(drop=True)
        if self.mode == "rating":
            from adpilot.profiling.build import rating_polarity

            return pd.DataFrame({"id": batch[C.ID], "polarity": rating_polarity(batch)})
        out = np.zeros(len(batch))
        lang = batch[C.LANGUAGE].where(batch[C.LANGUAGE].isin(list(self.models)), "en")
        for code, model in self.models.items():
            mask = (lang == code).to_numpy()
            if mask.any():
                texts = batch.loc[mask, C.TEXT].fillna("").astype(str).tolist()
                proba = model.predict_proba(texts)
                out[mask] = 2 * proba[:, list(model.classes_).index(1)] - 1
        return pd.DataFrame({"id": batch[C.ID], "polarity": out})


class AspectStage:
    """Aspect opinions per review (:func:`~adpilot.profiling.aspects.extract_aspects`).

    In: ``id``, ``text``, ``language``, ``polarity``. Out: one row per (review, aspect).
    """

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        from adpilot.profiling.aspects import extract_aspects

        batch = batch.reset_index(drop=True)
        out = extract_aspects(batch, overall=batch["polarity"])
        return out.astype({"review_id": str, "aspect": str, "score": float, "mentions": "int64",
                           "evidence": str})


def embedding_columns(dim: int) -> list[str]:
    return [f"e{i}" for i in range(dim)]


class EmbeddingStage:
    """Text embeddings as columns ``e0..e{d-1}`` (float32) beside ``id``.

    ``embedder``: a fitted embedder object (LSA fitted on the driver, shipped to the workers),
    or a registered name (``minilm``) built in each worker.
    """

    def __init__(self, embedder: object | str = "minilm", num_threads: int | None = 1) -> None:
        _threads(num_threads)
        if isinstance(embedder, str):
            from adpilot.profiling.embeddings import get_embedder

            embedder = get_embedder(embedder)
        self.embedder = embedder

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        vecs = np.asarray(self.embedder.encode(batch[C.TEXT].tolist()), dtype=np.float32)
        out = pd.DataFrame(vecs, columns=embedding_columns(vecs.shape[1]))
        out.insert(0, "id", batch[C.ID].to_numpy())
        return out


class ScoreStage:
    """The scorecard of each copy against its own product and audience.

    In: ``copy_id``, ``copy`` and optional ``product`` / ``audience`` (JSON objects as text).
    Out: ``copy_id`` and the scorecard columns. Set-level diversity (self-BLEU within a
    campaign) depends on the other copies, so it is left to a per-set pass: here each copy is
    scored alone and ``overall`` weighs the per-copy scores only.
    """

    def __init__(self, models_dir: str | None = None, embedder: str = "minilm",
                 num_threads: int | None = 1) -> None:
        from adpilot.scoring.attractiveness import AttractivenessModel
        from adpilot.scoring.fluency import CharNgramLM
        from adpilot.scoring.scorecard import Scorecard

        _threads(num_threads)
        attract = None
        if models_dir and (Path(models_dir) / "attractiveness" / "adpilot.json").exists():
            attract = AttractivenessModel.load(Path(models_dir) / "attractiveness")
        self.card = Scorecard(attractiveness=attract, embedder=embedder)
        if models_dir:  # the reference character LMs, loaded from the shared cache
            for lang in POLARITY_LANGS:
                path = Path(models_dir) / f"charlm-{lang}-20000.pkl"
                if path.exists():
                    self.card._lms[lang] = CharNgramLM.load(path)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        import json

        rows = []
        for rec in batch.reset_index(drop=True).to_dict("records"):
            product = json.loads(rec["product"]) if rec.get("product") else None
            audience = json.loads(rec["audience"]) if rec.get("audience") else None
            card = self.card.score([rec["copy"]], product=product, audience=audience)
            rows.append(card.drop(columns=["violations"]).assign(copy_id=rec["copy_id"]))
        if not rows:
            return pd.DataFrame(columns=["copy_id"])
        out = pd.concat(rows, ignore_index=True)
        scores = [c for c in out.columns if c not in ("copy_id", "copy", "language")
                  and not c.startswith("why_")]
        out[scores] = out[scores].astype(float)  # an all-NaN score must not become object
        return out[["copy_id"] + [c for c in out.columns if c != "copy_id"]]
