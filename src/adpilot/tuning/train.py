"""LoRA fine-tuning of a causal LM: supervised (SFT) and preference tuning (DPO).

One small torch loop for both (peft for the adapters). Why not trl's trainers: trl 1.16 imports
and runs with transformers 5, but its trainers compute the language-model head over every
position of prompt and completion. Here the prompts are the generator's (~350 tokens) and the
completions are short (~30 tokens); with a 262k-token vocabulary (Gemma 3) the head over the
prompt dominates CPU time, so this loop asks the model for the completion logits only
(``logits_to_keep``, sequences left-padded so completions end together). The examples are
formatted by the tokenizer's chat template exactly as :class:`TransformersBackend` formats a
request, so training and serving see the same tokens.

SFT minimises the completion's negative log-likelihood. DPO (Rafailov et al., 2023) minimises
``-log σ(β [(log π(w) − log π_ref(w)) − (log π(l) − log π_ref(l))])`` where π_ref is the model
with the adapter switched off (the base, or the SFT model when DPO starts from one).

The output directory is a plain Hugging Face model (LoRA merged into the weights, servable by the
``transformers`` backend), the adapter alone in ``adapter/``, ``adpilot.json`` with the
base, data hash, config and training metrics, and the same as the artifact document every
saved model carries (``adpilot-artifact.json``, kind ``generator``, :mod:`adpilot.artifacts`),
so the model store discovers it. Folders from before the document still load (format
version 0: ``adpilot.json`` alone).
"""

from __future__ import annotations

import contextlib
import json
import math
import resource
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

import adpilot
from adpilot import artifacts
from adpilot.deps import require
from adpilot.errors import ArtifactMismatchError, ConfigError
from adpilot.tuning.base import (
    base_info,
    ensure_chat_template,
    resolve_base,
    resolve_device,
    set_stop_tokens,
    train_dtype,
)
from adpilot.tuning.data import data_hash, kind_of

ARTIFACT = "copy-generator"  # the "artifact" key of adpilot.json
KIND = "generator"  # the kind in adpilot-artifact.json
FORMAT_VERSION = 1  # 0: adpilot.json alone
Method = Literal["sft", "dpo"]


@dataclass
class TuneConfig:
    """Settings of one tuning run (stored with the model)."""

    method: Method = "sft"
    steps: int = 60                 # optimiser steps
    batch_size: int = 4             # examples per step
    micro_batch: int = 4            # examples per forward pass (gradient accumulation)
    lr: float | None = None         # default: 2e-4 (SFT), 5e-5 (DPO)
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    beta: float = 0.1               # DPO temperature
    max_length: int = 768           # prompt + completion tokens (the prompt loses its start)
    warmup_steps: int = 5
    seed: int = 0
    device: str = "auto"
    max_seconds: float | None = None  # stop early (the steps done are recorded)

    def __post_init__(self) -> None:
        if self.method not in ("sft", "dpo"):
            raise ConfigError(f"The 'method' parameter of TuneConfig must be 'sft' or 'dpo'. "
                              f"Got {self.method!r}.")
        for name in ("steps", "batch_size", "micro_batch", "lora_r", "max_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"The '{name}' parameter of TuneConfig must be an int >= 1. "
                                  f"Got {getattr(self, name)}.")
        if self.batch_size % self.micro_batch:
            raise ConfigError("The 'batch_size' parameter of TuneConfig must be a multiple of "
                              f"micro_batch ({self.micro_batch}). Got {self.batch_size}.")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (2e-4 if self.method == "sft" else 5e-5)


@dataclass
class TuneResult:
    out_dir: Path
    meta: dict[str, Any]
    losses: list[float] = field(default_factory=list)


# --- tokenisation ------------------------------------------------------------------------------

def encode(tok: Any, messages: list[dict[str, str]], reply: str, max_length: int
           ) -> tuple[list[int], list[int]]:
    """Prompt ids (as the transformers backend tokenises a request) and the reply's ids up to
    and including the token that ends the assistant turn."""
    prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(messages + [{"role": "assistant", "content": reply}],
                                   tokenize=False)
    tail = full[len(prompt):] if full.startswith(prompt) else reply + (tok.eos_token or "")
    p = tok(prompt)["input_ids"]
    c = tok(tail.rstrip(), add_special_tokens=False)["input_ids"][: max_length // 2]
    return p[-(max_length - len(c)):], c


def _batch(seqs: list[tuple[list[int], list[int]]], pad_id: int, device: str):
    """Left-padded ids, mask and positions, so every completion ends at the last position."""
    torch = require("torch")
    total = max(len(p) + len(c) for p, c in seqs)
    keep = max(len(c) for _, c in seqs) + 1
    ids = torch.full((len(seqs), total), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), total), dtype=torch.long)
    labels = torch.full((len(seqs), keep - 1), -100, dtype=torch.long)
    for i, (p, c) in enumerate(seqs):
        row = p + c
        ids[i, total - len(row):] = torch.tensor(row)
        mask[i, total - len(row):] = 1
        labels[i, keep - 1 - len(c):] = torch.tensor(c)
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), pos.to(device), labels.to(device), keep


def completion_logprobs(model: Any, seqs: list[tuple[list[int], list[int]]], pad_id: int,
                        device: str):
    """Per sequence: summed log-probability of its completion tokens and their count."""
    torch = require("torch")
    ids, mask, pos, labels, keep = _batch(seqs, pad_id, device)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=pos,
                   logits_to_keep=keep).logits
    if logits.shape[1] != keep:  # a model that ignores logits_to_keep: take the tail ourselves
        logits = logits[:, -keep:]
    logits = logits[:, :-1].float()
    valid = labels != -100
    lp = torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (lp * valid).sum(-1), valid.sum(-1)


# --- training ----------------------------------------------------------------------------------

def _reset_peak_memory(device: str) -> None:
    """Start peak-memory accounting now (Linux: reset VmHWM), so loading or converting the
    base earlier in the process does not count as training memory."""
    torch = require("torch")
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak_memory_mb(device: str) -> dict[str, float]:
    torch = require("torch")
    try:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines()
                    if x.startswith("VmHWM:"))
        rss = int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"peak_rss_mb": round(rss, 1)}
    if device.startswith("cuda"):
        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def load_for_training(base_dir: Path, device: str):
    torch = require("torch", feature="fine-tuning")
    tf = require("transformers", feature="fine-tuning")
    tf.logging.set_verbosity_error()
    tok = tf.AutoTokenizer.from_pretrained(base_dir)
    stops = ensure_chat_template(tok)
    model = tf.AutoModelForCausalLM.from_pretrained(base_dir, dtype=train_dtype(device)).to(device)
    torch.manual_seed(0)
    return model, tok, stops


def tune(rows: list[dict[str, Any]], base: str | Path, out_dir: str | Path,
         config: TuneConfig | None = None, *,
         progress: Callable[[int, int, float], None] | None = None,
         store: artifacts.ModelStore | None = None) -> TuneResult:
    """Fit a LoRA adapter on ``rows`` (SFT or DPO examples, see :mod:`adpilot.tuning.data`)
    over ``base`` and save the merged model to ``out_dir``. ``progress(step, steps, loss)``;
    ``store``: where a GGUF base is converted once (needed for a GGUF base)."""
    config = config or TuneConfig()
    kind = kind_of(rows)
    if kind != config.method:
        raise ConfigError(f"the data holds {kind.upper()} examples but the method is "
                          f"{config.method!r}")
    torch = require("torch", feature="fine-tuning")
    peft = require("peft", feature="fine-tuning")
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
    device = resolve_device(config.device)
    base_dir = resolve_base(base, store=store)
    model, tok, stops = load_for_training(base_dir, device)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    torch.manual_seed(config.seed)
    lora = peft.LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                           lora_dropout=config.lora_dropout, target_modules=config.target_modules,
                           task_type="CAUSAL_LM")
    model = peft.get_peft_model(model, lora)
    if kind == "dpo":  # as trl does: dropout would make policy and reference differ by noise
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total_params = sum(p.numel() for p in model.parameters())
    if kind == "sft":
        encoded = [[encode(tok, r["messages"], r["completion"], config.max_length)] for r in rows]
    else:
        encoded = [[encode(tok, r["messages"], r["chosen"], config.max_length),
                    encode(tok, r["messages"], r["rejected"], config.max_length)] for r in rows]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                            lr=config.learning_rate, weight_decay=0.0)
    warm = max(1, min(config.warmup_steps, config.steps))
    sched = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up, then linear decay
        opt, lambda s: (s + 1) / warm if s < warm
        else max(0.05, (config.steps - s) / max(1, config.steps - warm)))
    rng = np.random.default_rng(config.seed)
    order: list[int] = []
    losses, accuracies, margins = [], [], []
    model.train()
    _reset_peak_memory(device)
    started = time.perf_counter()
    steps_done = 0
    for step in range(config.steps):
        opt.zero_grad(set_to_none=True)
        step_loss = 0.0
        for _ in range(config.batch_size // config.micro_batch):
            if len(order) < config.micro_batch:
                order += list(rng.permutation(len(rows)))
            idx, order = order[: config.micro_batch], order[config.micro_batch:]
            if kind == "sft":
                seqs = [encoded[i][0] for i in idx]
                lp, n = completion_logprobs(model, seqs, pad_id, device)
                loss = -(lp.sum() / n.sum())
            else:
                seqs = [encoded[i][0] for i in idx] + [encoded[i][1] for i in idx]
                lp, _ = completion_logprobs(model, seqs, pad_id, device)
                with torch.no_grad(), model.disable_adapter():
                    ref, _ = completion_logprobs(model, seqs, pad_id, device)
                k = len(idx)
                logits = config.beta * ((lp[:k] - ref[:k]) - (lp[k:] - ref[k:]))
                loss = -torch.nn.functional.logsigmoid(logits).mean()
                accuracies.append(float((logits.detach() > 0).float().mean()))
                margins.append(float(logits.detach().mean() / config.beta))
            (loss * config.micro_batch / config.batch_size).backward()
            step_loss += float(loss.detach()) * config.micro_batch / config.batch_size
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        sched.step()
        losses.append(step_loss)
        steps_done = step + 1
        if progress:
            progress(steps_done, config.steps, step_loss)
        if config.max_seconds and time.perf_counter() - started > config.max_seconds:
            break
    seconds = time.perf_counter() - started
    memory = _peak_memory_mb(device)
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp / "adapter")
    merged = model.merge_and_unload()
    set_stop_tokens(merged, stops)
    merged.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    head = max(1, min(5, len(losses)))
    metrics = {"steps": steps_done, "examples_seen": steps_done * config.batch_size,
               "train_seconds": round(seconds, 1),
               "seconds_per_step": round(seconds / max(1, steps_done), 2),
               "loss_first5": round(float(np.mean(losses[:head])), 4),
               "loss_last5": round(float(np.mean(losses[-head:])), 4), **memory,
               "device": device, "trainable_params": int(trainable),
               "total_params": int(total_params)}
    if kind == "dpo":
        metrics["reward_accuracy_last20"] = round(float(np.mean(accuracies[-20:])), 3)
        metrics["logratio_margin_last20"] = round(float(np.mean(margins[-20:])), 4)
    meta = {"artifact": ARTIFACT, "adpilot_version": adpilot.__version__, "method": kind,
            "base": str(base), "base_dir": str(base_dir), "base_info": base_info(base_dir),
            "data_hash": data_hash(rows), "n_examples": len(rows), "config": asdict(config),
            "metrics": {"train": metrics},
            "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    (tmp / "adpilot.json").write_text(json.dumps(meta, indent=2))
    write_document(tmp, meta)
    (tmp / "losses.json").write_text(json.dumps([round(x, 5) for x in losses]))
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    return TuneResult(out, meta, losses)


def write_document(model_dir: str | Path, meta: dict[str, Any]) -> artifacts.ArtifactMeta:
    """Write the artifact document of a tuned model from its ``adpilot.json`` content."""
    return artifacts.save_metadata(
        model_dir, KIND, FORMAT_VERSION, data_hash=meta.get("data_hash"),
        config={**meta.get("config", {}), "method": meta.get("method"), "base": meta.get("base")},
        metrics=meta.get("metrics", {}), created_at=meta.get("created_at"),
        extra={"base_model": meta.get("base"), "method": meta.get("method"),
               "n_examples": meta.get("n_examples"), "base_info": meta.get("base_info")})


def load_meta(model_dir: str | Path) -> dict[str, Any]:
    """``adpilot.json`` of a tuned model, its artifact document checked when it has one;
    :class:`ArtifactMismatchError` if it is not one."""
    f = Path(model_dir) / "adpilot.json"
    if not f.is_file():
        raise ArtifactMismatchError(f"{model_dir} is not a tuned adpilot model (no adpilot.json)")
    meta = json.loads(f.read_text())
    if meta.get("artifact") != ARTIFACT:
        raise ArtifactMismatchError(f"{model_dir} holds a {meta.get('artifact')!r} artifact, "
                                    f"not {ARTIFACT!r}")
    artifacts.check(model_dir, KIND, FORMAT_VERSION)  # a folder without it: format version 0
    return meta


def migrate_legacy(store: artifacts.ModelStore) -> list[Path]:
    """Write the document of every tuned model in ``store`` saved with ``adpilot.json`` alone."""
    done = []
    for f in sorted(store.root.glob("*/adpilot.json")):
        folder = f.parent
        if (folder / artifacts.METADATA_FILE).is_file():
            continue
        try:
            meta = json.loads(f.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if meta.get("artifact") == ARTIFACT:
            write_document(folder, meta)
            done.append(folder)
    return done


def perplexity(model_dir: str | Path, rows: list[dict[str, Any]], *, device: str = "auto",
               batch: int = 4, max_length: int = 768) -> dict[str, float]:
    """Perplexity of the reference replies (``completion``, or ``chosen`` for DPO rows) given
    their prompts: exp of the mean negative log-likelihood per completion token."""
    torch = require("torch", feature="evaluation")
    device = resolve_device(device)
    model, tok, _ = load_for_training(Path(model_dir), device)
    model.eval()
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    seqs = [encode(tok, r["messages"], r.get("completion") or r["chosen"], max_length) for r in rows]
    nll, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(seqs), batch):
            lp, n = completion_logprobs(model, seqs[i:i + batch], pad_id, device)
            nll -= float(lp.sum())
            count += int(n.sum())
    del model
    return {"perplexity": round(math.exp(nll / max(1, count)), 4), "tokens": count,
            "examples": len(rows)}
