"""Tuning stage: fine-tuning the copy generator on the company's data (LoRA SFT and DPO over a
base model from a GGUF or HF directory), its evaluation against the base, and the model
registry that the ``transformers`` backend serves the promoted generator from.

Heavy dependencies (torch, transformers, peft, gguf) are imported lazily: ``pip install
'adpilot[tune]'``.
"""

from adpilot.tuning.registry import ModelEntry, ModelRegistry, promoted_generator_dir, register_tuned

__all__ = ["ModelEntry", "ModelRegistry", "promoted_generator_dir", "register_tuned"]
