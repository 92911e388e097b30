"""Scoring copies in batches on an executor: :class:`ScoreStage`, built once per worker (it
loads the attractiveness model and the reference character LMs from a shared models folder),
then called on batches of copies (see :mod:`adpilot.backends.executor`)."""

from __future__ import annotations

import json

import pandas as pd

from adpilot.devices import limit_threads

LM_LANGS = ("en", "zh")  # the reference character LMs a worker loads when they are cached


class ScoreStage:
    """The scorecard of each copy against its own product and audience.

    In: ``copy_id``, ``copy`` and optional ``product`` / ``audience`` (JSON objects as text).
    Out: ``copy_id`` and the scorecard columns. Set-level diversity (self-BLEU within a
    campaign) depends on the other copies, so it is left to a per-set pass: here each copy is
    scored alone and ``overall`` weighs the per-copy scores only.
    """

    def __init__(self, models_dir: str | None = None, embedder: str = "minilm",
                 num_threads: int | None = 1) -> None:
        from adpilot.artifacts import ModelStore
        from adpilot.scoring.attractiveness import AttractivenessModel, default_model_dir, is_saved
        from adpilot.scoring.fluency import load_reference_lm
        from adpilot.scoring.scorecard import Scorecard

        limit_threads(num_threads)
        store = ModelStore(models_dir) if models_dir else None
        attract = None
        if store and is_saved(default_model_dir(store)):
            attract = AttractivenessModel.load(default_model_dir(store))
        self.card = Scorecard(attractiveness=attract, embedder=embedder)
        if store:  # the reference character LMs, loaded from the shared cache
            for lang in LM_LANGS:
                lm = load_reference_lm(lang, 20000, store)
                if lm is not None:
                    self.card._lms[lang] = lm

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
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
