"""MiniLM fine-tuned end to end as a Bradley-Terry scorer (the neural half of the
attractiveness model).

s(x) = head(normalised mean-pooled MiniLM(x)); P(A beats B) = σ(s(A) − s(B)). Trained with
the evidence-weighted binary cross-entropy of real pairs (the loss is symmetric in the
orientation of a pair, so no side bias is possible). Batches are whole tests: every text of a
test is encoded once per step and all its pairs share the forward pass. Needs the ``ml`` extra.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from adpilot.deps import require

WEIGHTS = "siamese.safetensors"


def weights_name(index: int = 0) -> str:
    """File of the ``index``-th scorer of a seed ensemble (the first keeps the old name)."""
    return WEIGHTS if index == 0 else f"siamese-{index}.safetensors"


class SiameseScorer:
    """A sentence encoder plus a linear head, fitted on pairs (text_a, text_b, label, z)."""

    def __init__(self, backbone: str | None = None, epochs: int = 2, lr: float = 3e-5,
                 head_lr: float = 1e-3, batch_pairs: int = 32, max_length: int = 48,
                 max_evidence: float = 3.0, seed: int = 0) -> None:
        self.backbone = backbone
        self.epochs = epochs
        self.lr = lr
        self.head_lr = head_lr
        self.batch_pairs = batch_pairs
        self.max_length = max_length
        self.max_evidence = max_evidence
        self.seed = seed
        self._net = None

    def _build(self):
        torch = require("torch", feature="fine-tuning the attractiveness scorer")
        transformers = require("transformers", feature="fine-tuning the attractiveness scorer")
        if self.backbone is None:
            from adpilot.profiling.embeddings import minilm_path

            path = minilm_path()
        else:
            path = self.backbone
        self._tok = transformers.AutoTokenizer.from_pretrained(path)
        torch.manual_seed(self.seed)
        encoder = transformers.AutoModel.from_pretrained(path)
        head = torch.nn.Linear(encoder.config.hidden_size, 1)
        self._net = torch.nn.ModuleDict({"encoder": encoder, "head": head})
        return torch

    def _forward(self, texts: list[str]):
        import torch

        batch = self._tok(texts, padding=True, truncation=True, max_length=self.max_length,
                          return_tensors="pt")
        hidden = self._net["encoder"](**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
        return self._net["head"](pooled).squeeze(-1)

    def _batches(self, pairs: pd.DataFrame, rng: np.random.Generator) -> list[np.ndarray]:
        """Pair indices grouped by test (all pairs of a test in one batch), tests shuffled."""
        keys = pairs["test_id"] if "test_id" in pairs else pd.Series(np.arange(len(pairs)))
        groups = list(pd.Series(np.arange(len(pairs))).groupby(keys.to_numpy()).indices.values())
        out, cur = [], []
        for g in rng.permutation(len(groups)):
            cur.extend(groups[g])
            if len(cur) >= self.batch_pairs:
                out.append(np.array(cur))
                cur = []
        if cur:
            out.append(np.array(cur))
        return out

    def fit(self, pairs: pd.DataFrame, log=None, on_epoch=None, progress=None) -> SiameseScorer:
        """``log(message)`` hears the loss per epoch; ``on_epoch(epoch, self)`` is called
        after each epoch with the scorer ready to score (model selection on a validation
        slice); ``progress(steps done, steps in all)`` after every optimiser step."""
        torch = self._build()
        pairs = pairs.reset_index(drop=True)
        rng = np.random.default_rng(self.seed)
        text_a, text_b = pairs["text_a"].astype(str).tolist(), pairs["text_b"].astype(str).tolist()
        y = torch.tensor(pairs["label"].to_numpy(), dtype=torch.float32)
        z = pairs["z"].to_numpy() if "z" in pairs else np.ones(len(pairs))
        w = torch.tensor(np.minimum(z, self.max_evidence) + 0.1, dtype=torch.float32)
        opt = torch.optim.AdamW([
            {"params": self._net["encoder"].parameters(), "lr": self.lr},
            {"params": self._net["head"].parameters(), "lr": self.head_lr}], weight_decay=0.01)
        steps = self.epochs * len(self._batches(pairs, np.random.default_rng(0)))
        warm = max(1, int(0.06 * steps))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: s / warm if s < warm else max(0.0, (steps - s) / max(1, steps - warm)))
        self._net.train()
        done = 0
        if progress is not None:
            progress(done, steps)
        for epoch in range(self.epochs):
            total = 0.0
            for idx in self._batches(pairs, rng):
                texts = list(dict.fromkeys([text_a[i] for i in idx] + [text_b[i] for i in idx]))
                where = {t: k for k, t in enumerate(texts)}
                s = self._forward(texts)
                d = (s[[where[text_a[i]] for i in idx]] - s[[where[text_b[i]] for i in idx]])
                loss = (torch.nn.functional.binary_cross_entropy_with_logits(
                    d, y[idx], reduction="none") * w[idx]).sum() / w[idx].sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
                done += 1
                if progress is not None:
                    progress(done, steps)
            if log is not None:
                log(f"epoch {epoch + 1}/{self.epochs}: weighted loss {total / len(pairs):.4f}")
            if on_epoch is not None:
                self._net.eval()
                on_epoch(epoch + 1, self)
                self._net.train()
        self._net.eval()
        return self

    def score(self, texts: list[str], batch_size: int = 128, progress=None) -> np.ndarray:
        """Bradley-Terry scores (differences are log-odds of winning), batched by length;
        ``progress(texts done, texts in all)`` after each batch."""
        import torch

        texts = [str(t) for t in texts]
        out = np.zeros(len(texts), dtype=np.float64)
        order = np.argsort([len(t) for t in texts], kind="stable")
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                idx = order[i:i + batch_size]
                out[idx] = self._forward([texts[j] for j in idx]).numpy()
                if progress is not None:
                    progress(i + len(idx), len(texts))
        return out

    def save(self, folder: str | Path, name: str = WEIGHTS) -> Path:
        from safetensors.torch import save_file

        path = Path(folder) / name
        save_file({k: v.contiguous() for k, v in self._net.state_dict().items()}, str(path))
        return path

    def load_weights(self, folder: str | Path, name: str = WEIGHTS) -> SiameseScorer:
        from safetensors.torch import load_file

        self._build()
        self._net.load_state_dict(load_file(str(Path(folder) / name)))
        self._net.eval()
        return self
