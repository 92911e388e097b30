"""Where torch models run and on how many threads: one home for the device and thread choices
that the sentiment models, the executor steps and fine-tuning all make."""

from __future__ import annotations

import os

from adpilot.deps import require


def resolve_device(device: str = "auto", *, feature: str = "torch models") -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``mps`` on Apple silicon, else ``cpu``;
    any other value is returned as given. ``feature`` names what needs torch in the
    install hint when it is missing."""
    torch = require("torch", feature=feature)
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


def limit_threads(num_threads: int | None) -> None:
    """Cap torch's CPU threads at ``num_threads`` in a worker; nothing when it is ``None`` or
    torch is not installed (a step that needs no torch still runs)."""
    if num_threads:
        try:
            import torch
        except ImportError:
            return
        torch.set_num_threads(num_threads)
