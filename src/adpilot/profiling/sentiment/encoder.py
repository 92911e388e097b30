"""The transformer half's internals (BERT family): tokens to padded batches, the encoder run in
two parts (frozen lower layers cached once, upper layers trained), a last layer computed for the
[CLS] position only, and batched inference with the arithmetic the ``precision`` asks for.

These reach into the module layout of Hugging Face BERT models (``base_model.embeddings``,
``encoder.layer``, ``pooler``, ``classifier``); :func:`supports_cls_only` checks that layout
before the shortcut is taken, and any other model runs its own ``forward``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adpilot.deps import require
from adpilot.errors import ConfigError
from adpilot.profiling.embeddings import minilm_path

PRECISIONS = ("fp32", "bf16", "auto")


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


def backbone_path(backbone: str, lang: str) -> str | None:
    """The folder of the backbone to fine-tune (``None``: TF-IDF only)."""
    if backbone == "none":
        return None
    if backbone in ("auto", "minilm"):
        return minilm_path()
    if Path(backbone).is_dir():
        return backbone
    raise ConfigError(f"The 'backbone' parameter of SentimentModel must be 'auto', 'minilm', "
                      f"'none' or a local Hugging Face model folder. Got {backbone!r}.")


def length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None
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


def pad(ids: list[list[int]], pad_id: int, torch: Any, device: str) -> dict[str, Any]:
    """Token ids padded to the longest, with the attention mask, as tensors on ``device``."""
    width = max(len(x) for x in ids)
    arr = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for i, x in enumerate(ids):
        arr[i, :len(x)] = x
        mask[i, :len(x)] = 1
    return {"input_ids": torch.from_numpy(arr).to(device),
            "attention_mask": torch.from_numpy(mask).to(device)}


def bert_mask(base: Any, hidden: Any, mask: Any) -> Any:
    """The attention mask in the form the encoder layers take."""
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=base.config, inputs_embeds=hidden, attention_mask=mask)


def lower_forward(model: Any, input_ids: Any, mask: Any, k: int) -> Any:
    """Hidden states after the embeddings and the lower ``k`` encoder layers (BERT family)."""
    base = model.base_model
    hidden = base.embeddings(input_ids=input_ids)
    attn = bert_mask(base, hidden, mask)
    for layer in base.encoder.layer[:k]:
        hidden = layer(hidden, attn)
    return hidden


def upper_forward(model: Any, hidden: Any, mask: Any, k: int) -> Any:
    """Logits from the hidden states of layer ``k``: upper layers, pooler, classifier head."""
    base = model.base_model
    attn = bert_mask(base, hidden, mask)
    for layer in base.encoder.layer[k:]:
        hidden = layer(hidden, attn)
    pooled = base.pooler(hidden) if base.pooler is not None else hidden[:, 0]
    return model.classifier(model.dropout(pooled))


def supports_cls_only(model: Any) -> bool:
    """A BERT-family sequence classifier whose last layer :func:`cls_logits` can run."""
    base = getattr(model, "base_model", None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if not layers or not hasattr(model, "classifier") or not hasattr(base, "embeddings"):
        return False
    last = layers[-1]
    attn = getattr(last, "attention", None)
    return (getattr(base, "pooler", None) is not None and hasattr(last, "intermediate")
            and hasattr(last, "output") and hasattr(getattr(attn, "self", None), "query")
            and hasattr(attn, "output"))


def cls_logits(model: Any, input_ids: Any, mask: Any) -> Any:
    """Logits computed as the model computes them, minus the work nothing reads: the classifier
    sees only the first ([CLS]) position of the last layer, so that layer runs one query (keys and
    values still from every token) and its feed-forward part on one position instead of all.
    About a sixth less compute for a 6-layer model; same logits up to float rounding."""
    import torch

    base = model.base_model
    layers = base.encoder.layer
    hidden = lower_forward(model, input_ids, mask, len(layers) - 1)
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


def lower_cache(model: Any, enc: list[list[int]], k: int, pad_id: int, device: str
                ) -> list[np.ndarray]:
    """Frozen-layer outputs of every text, once (float16, unpadded: ~1 GB for 16k reviews)."""
    import torch

    model.eval()
    lengths = np.array([len(e) for e in enc])
    out: list[np.ndarray] = [None] * len(enc)  # type: ignore[list-item]
    with torch.inference_mode():
        for batch in length_batches(lengths, 64, None):
            inputs = pad([enc[i] for i in batch], pad_id, torch, device)
            hidden = lower_forward(model, inputs["input_ids"], inputs["attention_mask"], k)
            hidden = hidden.to(torch.float16).cpu().numpy()
            for row, i in enumerate(batch):
                out[i] = hidden[row, :lengths[i]]
    return out


def pad_hidden(states: list[np.ndarray], torch: Any, device: str) -> tuple[Any, Any]:
    """Cached hidden states padded to the longest, with the mask, as tensors on ``device``."""
    width = max(len(h) for h in states)
    arr = np.zeros((len(states), width, states[0].shape[1]), dtype=np.float32)
    mask = np.zeros((len(states), width), dtype=np.int64)
    for i, h in enumerate(states):
        arr[i, :len(h)] = h
        mask[i, :len(h)] = 1
    return torch.from_numpy(arr).to(device), torch.from_numpy(mask).to(device)


def extend_vocab(tokenizer: Any, texts: Sequence[str], min_count: int = 2) -> int:
    """Add characters the vocabulary maps to [UNK] (most CJK characters for MiniLM) as tokens."""
    from collections import Counter

    counts = Counter(ch for t in texts for ch in t if "\u3400" <= ch <= "\u9fff")
    vocab = tokenizer.get_vocab()
    new = sorted(ch for ch, n in counts.items() if n >= min_count and ch not in vocab)
    return tokenizer.add_tokens(new) if new else 0


def transformer_proba(model: Any, tok: Any, texts: list[str], n_classes: int, *,
                      max_length: int, batch_size: int = 64) -> np.ndarray:
    """Class probabilities of a sequence classifier: length-sorted batches, dynamic padding,
    no autograd; on a CPU with several threads, batches run side by side, one thread each."""
    torch = require("torch")
    device = next(model.parameters()).device
    enc = tok(texts, truncation=True, max_length=max_length)["input_ids"]
    lengths = np.array([len(e) for e in enc])
    out = np.zeros((len(texts), n_classes), dtype=np.float64)
    pad_id = tok.pad_token_id or 0
    cls_only = supports_cls_only(model)

    def run(batch: np.ndarray) -> None:
        with torch.inference_mode():  # thread-local: entered in the thread that runs
            inputs = pad([enc[i] for i in batch], pad_id, torch, device)
            logits = (cls_logits(model, inputs["input_ids"], inputs["attention_mask"])
                      if cls_only else model(**inputs).logits)
            out[batch] = torch.softmax(logits.float(), -1).cpu().numpy()

    batches = length_batches(lengths, batch_size, None)
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
