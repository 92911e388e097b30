"""The small real components test_contracts.py registers, one of each kind, to show that a
component is covered by the contract checks as soon as it is registered."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from adpilot.backends.executor import Executor, read_parquet_parts
from adpilot.backends.llm import Completion, LLMBackend, Usage
from adpilot.delivery import Message as Outgoing
from adpilot.delivery.base import Receipt
from adpilot.errors import NotFittedError
from adpilot.optimization.policies import Policy


class Tripler:
    """A batch-invariant stage: each row's output depends on the row only."""

    def __init__(self, factor: int = 3) -> None:
        self.factor = factor

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"id": batch["id"].to_numpy(), "y": batch["x"].to_numpy() * self.factor})


def email_message(i: int) -> Outgoing:
    return Outgoing(campaign="contract", variant="A", user_id=f"u{i}", channel="email",
                    to=f"user{i}@example.test", subject=f"Hello {i}", text=f"Offer {i}",
                    html=f"<p>Offer <b>{i}</b></p>", approved=True)


def sms_message(i: int) -> Outgoing:
    return Outgoing(campaign="contract", user_id=f"u{i}", channel="sms", to=f"+8613800{i:06d}",
                    text=f"优惠 {i}", lang="zh", approved=True)


class EchoBackend(LLMBackend):
    """Replies with the last user message: deterministic, no model."""

    name = "test-echo"

    def complete(self, messages, params):
        text = messages[-1].content[: params.max_tokens * 4]
        return Completion(text, Usage(sum(len(m.content.split()) for m in messages),
                                      len(text.split())), model=self.name)


class SerialExecutor(Executor):
    """One batch at a time, in this process, with no streaming of Parquet: the smallest executor."""

    name = "test-serial"

    def iter_batches(self, stage, data):
        frame = data if isinstance(data, pd.DataFrame) else read_parquet_parts(data)
        fn = stage.build()
        for start in range(0, len(frame), stage.batch_size):
            yield fn(frame.iloc[start:start + stage.batch_size].reset_index(drop=True))

    def to_parquet(self, stage, data, out_dir):
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for i, batch in enumerate(self.iter_batches(stage, data)):
            batch.to_parquet(out / f"part-{i:05d}.parquet", index=False)
        return out


def shouting(fields, ctx) -> list[str]:
    """No word of five or more capital letters (SHOUTING reads as spam)."""
    words = [w for text in fields.values() for w in text.split() if len(w) >= 5 and w.isupper()]
    return [f"{w!r} is shouted: write it in lower case" for w in words]


class CharHashEmbedder:
    """Character bigrams hashed into 32 buckets, L2-normalised: any language, no fitting."""

    name = "test-charhash"
    dim = 32

    def encode(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for a, b in zip(text, text[1:], strict=False):
                out[row, hashlib.md5((a + b).encode()).digest()[0] % self.dim] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


class DifferenceOfMeans:
    """Uplift = the arm's mean outcome minus the control's, the same for everyone."""

    def __init__(self, control="ctl", seed: int = 0) -> None:
        self.control, self.seed, self.treatments_ = control, seed, []

    def fit(self, x, treatment, y):
        treatment, y = np.asarray(treatment), np.asarray(y, float)
        self.treatments_ = sorted(set(treatment.tolist()) - {self.control})
        base = y[treatment == self.control].mean()
        self.effects_ = np.array([y[treatment == a].mean() - base for a in self.treatments_])
        return self

    def predict_uplift(self, x):
        if not self.treatments_:
            raise NotFittedError("DifferenceOfMeans is not fitted yet; call fit first.")
        return np.tile(self.effects_, (len(x), 1))


class EpsilonGreedy(Policy):
    """The arm with the best observed rate gets 1 - ε, the others share ε."""

    kind = "test_epsilon_greedy"

    def __init__(self, arms, epsilon: float = 0.1, wins=None, plays=None) -> None:
        super().__init__(arms)
        self.epsilon = epsilon
        self.wins = list(wins or [0.0] * len(arms))
        self.plays = list(plays or [0.0] * len(arms))

    def probabilities(self, context=None):
        rates = np.divide(self.wins, np.maximum(self.plays, 1))
        p = np.full(len(self.arms), self.epsilon / len(self.arms))
        p[int(np.argmax(rates))] += 1 - self.epsilon
        return p

    def update(self, arm, reward, context=None):
        i = self.arms.index(arm)
        self.wins[i] += reward
        self.plays[i] += 1

    def add_arm(self, arm):
        super().add_arm(arm)
        self.wins.append(0.0)
        self.plays.append(0.0)

    def state(self):
        return {**super().state(), "epsilon": self.epsilon, "wins": self.wins, "plays": self.plays}


class ListChannel:
    """Appends every message to a list: the smallest channel."""

    name = "test-list"
    idempotent = True  # a resend of the same id replaces, never adds
    sent: ClassVar[dict[str, Outgoing]] = {}

    def deliver(self, message):
        self.sent[message.message_id] = message
        return Receipt(message_id=message.message_id, status="sent", provider_id=message.message_id)

    def close(self) -> None:
        pass
