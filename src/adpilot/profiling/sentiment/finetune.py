"""Fine-tuning the transformer half: AdamW with linear warm-up and decay, optional frozen lower
layers (their outputs computed once and cached), class-weighted loss, and a checkpoint every
``checkpoint_every`` steps that an interrupted run resumes from.

The batch order of each epoch depends only on ``(seed, epoch)``, so a resumed run takes the
same steps as one that was never interrupted. A checkpoint is used only when its fingerprint
(training data hash and model config) is that of the run asking for it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adpilot.deps import require
from adpilot.devices import resolve_device, set_threads
from adpilot.profiling.sentiment.encoder import (
    extend_vocab,
    length_batches,
    lower_cache,
    pad,
    pad_hidden,
    upper_forward,
)
from adpilot.profiling.sentiment.labels import Progress, data_sha256

if TYPE_CHECKING:
    from adpilot.profiling.sentiment.model import SentimentModel

CLASS_WEIGHTS = (None, "balanced", "sqrt")
FEATURE = "transformer sentiment models"


def loss_weights(kind: str | None, target: np.ndarray, n_classes: int) -> np.ndarray | None:
    """Per-class weights of the fine-tuning loss (see ``class_weight``); a class absent from
    the training texts gets weight 1 (it never appears in the loss anyway)."""
    if kind is None:
        return None
    counts = np.bincount(target, minlength=n_classes).astype(float)
    w = np.where(counts > 0, len(target) / (n_classes * np.maximum(counts, 1)), 1.0)
    return np.sqrt(w) if kind == "sqrt" else w


def _load(est: SentimentModel, path: str, texts: list[str], device: str) -> tuple[Any, Any, int]:
    """Tokenizer (extended by unknown CJK characters when asked), the classifier on ``device``
    and how many tokens were added."""
    transformers = require("transformers", feature=FEATURE)
    # the new head's "MISSING weights" notice and load bars are expected: keep CLIs quiet
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    tok = transformers.AutoTokenizer.from_pretrained(path)
    extend = est.extend_vocab if est.extend_vocab != "auto" else est.lang_ == "zh"
    added = extend_vocab(tok, texts) if extend else 0
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(est.classes_), problem_type="single_label_classification")
    if added:
        model.resize_token_embeddings(len(tok))
    model.to(device)
    return tok, model, added


class _Checkpoint:
    """``checkpoint.pt`` in the checkpoint folder: written atomically, read only when its
    fingerprint matches."""

    def __init__(self, folder: str | None, fingerprint: str) -> None:
        self.path = Path(folder) / "checkpoint.pt" if folder else None
        self.fingerprint = fingerprint

    def restore(self, torch: Any, device: str, model: Any, opt: Any, sched: Any) -> int:
        """Load the saved state into ``model``/``opt``/``sched``; the step to resume at."""
        if self.path is None or not self.path.exists():
            return 0
        state = torch.load(self.path, map_location=device, weights_only=False)
        if state.get("fingerprint") != self.fingerprint:  # a checkpoint of another run
            return 0
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        return state["step"]

    def save(self, torch: Any, model: Any, opt: Any, sched: Any, step: int) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                    "sched": sched.state_dict(), "step": step,
                    "fingerprint": self.fingerprint}, tmp)
        tmp.replace(self.path)  # atomic: an interrupt never leaves half a checkpoint

    def remove(self) -> None:
        if self.path is not None and self.path.exists():
            self.path.unlink()


def fine_tune(est: SentimentModel, path: str, texts: list[str], y: np.ndarray,
              progress: Progress | None = None) -> tuple[Any, Any]:
    """Fine-tune the backbone in ``path`` on ``texts``/``y`` with the settings of ``est``
    (a :class:`SentimentModel` whose ``classes_`` and ``lang_`` are set); returns the model
    (in eval mode) and its tokenizer. ``progress(done, total)`` after every optimiser step."""
    torch = require("torch", feature=FEATURE)
    set_threads(est.num_threads)
    torch.manual_seed(est.seed)
    device = resolve_device(est.device, feature=FEATURE)
    tok, model, added = _load(est, path, texts, device)
    enc = tok(texts, truncation=True, max_length=est.max_length)["input_ids"]
    lengths = np.array([len(e) for e in enc])
    target = torch.tensor(np.searchsorted(est.classes_, y), dtype=torch.long)
    weight = loss_weights(est.class_weight, target.numpy(), len(est.classes_))
    weight = None if weight is None else torch.tensor(weight, dtype=torch.float32, device=device)

    steps_per_epoch = math.ceil(len(texts) / est.batch_size)
    total = math.ceil(steps_per_epoch * est.epochs)
    if est.max_steps is not None:
        total = min(total, est.max_steps)
    frozen = est.freeze_layers if not added else 0
    if frozen:
        base = model.base_model
        for module in (base.embeddings, *base.encoder.layer[:frozen]):
            module.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=est.lr, weight_decay=est.weight_decay)
    warm = max(1, int(est.warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))

    ckpt = _Checkpoint(est.checkpoint_dir, data_sha256(texts, y) + json.dumps(
        {k: getattr(est, k) for k in est._CONFIG_KEYS}, sort_keys=True, default=str))
    step = done = ckpt.restore(torch, device, model, opt, sched)
    if progress:
        progress(done, total)
    pad_id = tok.pad_token_id or 0
    cache = lower_cache(model, enc, frozen, pad_id, device) if frozen else None
    model.train()
    epoch = 0
    while done < total:
        # the batch order of each epoch depends only on (seed, epoch): resumable mid-epoch
        batches = length_batches(lengths, est.batch_size, np.random.default_rng([est.seed, epoch]))
        for b_i, batch in enumerate(batches):
            if epoch * steps_per_epoch + b_i < step:
                continue
            if done >= total:
                break
            if cache is not None:
                hidden, mask = pad_hidden([cache[i] for i in batch], torch, device)
                logits = upper_forward(model, hidden, mask, frozen)
            else:
                logits = model(**pad([enc[i] for i in batch], pad_id, torch, device)).logits
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
            if done % est.checkpoint_every == 0 and done < total:
                ckpt.save(torch, model, opt, sched, done)
        epoch += 1
    model.eval()
    ckpt.remove()
    return model, tok
