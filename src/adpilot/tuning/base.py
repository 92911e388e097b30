"""Base models that can be tuned: a Hugging Face directory, or a GGUF file made into one.

The offline generators are GGUF files (llama.cpp). transformers reads a GGUF and dequantises
it to float tensors (``from_pretrained(dir, gguf_file=...)``, needs the ``gguf`` package); the
result is saved once as a plain HF directory in the model cache, so training, evaluation and
serving (the ``transformers`` backend) all load the same weights with the same chat template.

``--base`` accepts a HF directory, a ``.gguf`` path, or a name from
:data:`adpilot.backends.llm.models.MODELS` (``gemma3-270m-q4_k_m``,
``qwen2.5-coder-1.5b-instruct-q4_k_m``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from adpilot.artifacts import ModelStore
from adpilot.deps import require
from adpilot.devices import resolve_device  # noqa: F401 (tuning.train/evaluate import it here)
from adpilot.errors import ConfigError, InputError

PROVENANCE = "adpilot-base.json"

# Chat formats for tokenizers that come without a template. Each assistant turn ends in a token
# that generation stops at, so a tuned model learns to stop after its JSON object.
GEMMA_TEMPLATE = (
    "{%- set ns = namespace(sys='') -%}"
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'system' -%}{%- set ns.sys = ns.sys + m['content'] + '\n\n' -%}"
    "{%- else -%}"
    "{{ '<start_of_turn>' + ('model' if m['role'] == 'assistant' else 'user') + '\n' }}"
    "{%- if m['role'] == 'user' -%}{{ ns.sys }}{%- set ns.sys = '' -%}{%- endif -%}"
    "{{ m['content'] + '<end_of_turn>\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}")
CHATML_TEMPLATE = (
    "{%- for m in messages -%}"
    "{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}")
GENERIC_TEMPLATE = (
    "{%- for m in messages -%}"
    "{{ '<|' + m['role'] + '|>\n' + m['content'] + eos_token + '\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\n' }}{%- endif -%}")


def train_dtype(device: str):
    """float32 on CPU (bf16 matmuls are slow there), bfloat16 on a GPU that supports it."""
    torch = require("torch", feature="fine-tuning")
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def ensure_chat_template(tok: Any) -> list[int]:
    """Give ``tok`` a chat template when it has none; return the token ids that end a turn
    (generation must stop at them)."""
    vocab = tok.get_vocab()
    if not getattr(tok, "chat_template", None):
        if "<start_of_turn>" in vocab and "<end_of_turn>" in vocab:
            tok.chat_template = GEMMA_TEMPLATE
        elif "<|im_start|>" in vocab and "<|im_end|>" in vocab:
            tok.chat_template = CHATML_TEMPLATE
        else:
            if tok.eos_token is None:
                raise ConfigError("the tokenizer has no chat template and no end-of-sequence "
                                  "token: cannot format chat examples")
            tok.chat_template = GENERIC_TEMPLATE
    stops = [tok.eos_token_id] if tok.eos_token_id is not None else []
    for t in ("<end_of_turn>", "<|im_end|>", "<|eot_id|>"):
        if t in vocab and vocab[t] not in stops:
            stops.append(vocab[t])
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return stops


def set_stop_tokens(model: Any, stops: list[int]) -> None:
    if stops:
        model.generation_config.eos_token_id = stops if len(stops) > 1 else stops[0]
        if model.generation_config.pad_token_id is None:
            model.generation_config.pad_token_id = stops[0]


def is_hf_dir(path: Path) -> bool:
    return (path / "config.json").is_file()


def _gguf_source(base: str, models_dir: Path) -> Path | None:
    from adpilot.backends.llm.models import MODELS, model_path

    if base in MODELS:
        return model_path(base, cache_dir=models_dir)
    p = Path(base)
    if p.suffix == ".gguf":
        if not p.is_file():
            raise InputError("GGUF file not found", path=str(p))
        return p
    return None


def resolve_base(base: str | Path, *, cache_dir: Path | None = None,
                 store: ModelStore | None = None) -> Path:
    """A HF directory for ``base``: itself when it is one, else the GGUF dequantised once into
    ``<models folder>/hf/<name>`` (with a chat template and stop tokens set); the models folder
    is ``cache_dir``, else ``store``'s root (one of the two must be given)."""
    p = Path(base)
    if p.is_dir():
        if not is_hf_dir(p):
            raise InputError("not a Hugging Face model directory (no config.json)", path=str(p))
        return p
    if not cache_dir and store is None:
        raise TypeError("resolve_base needs cache_dir= or store=: the models folder (a shell "
                        "passes ModelStore.from_settings(settings))")
    root = Path(cache_dir) if cache_dir else store.root
    gguf_path = _gguf_source(str(base), root)
    if gguf_path is None:
        raise InputError(f"unknown base model {str(base)!r}: give a HF directory, a .gguf file, "
                         "or a name from adpilot.backends.llm.models.MODELS")
    target = root / "hf" / gguf_path.stem
    if (target / PROVENANCE).is_file():
        return target
    return gguf_to_hf(gguf_path, target)


def gguf_to_hf(gguf_path: Path, target: Path) -> Path:
    """Dequantise ``gguf_path`` with transformers and save it as a float32 HF directory."""
    require("gguf", feature="loading GGUF base models")
    torch = require("torch", feature="fine-tuning")
    tf = require("transformers", feature="fine-tuning")
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tok = tf.AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = tf.AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,
                                                    dtype=torch.float32)
    # the tensors are plain floats now; only the GGUF "quantizer" marker blocks saving them
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    stops = ensure_chat_template(tok)
    set_stop_tokens(model, stops)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / PROVENANCE).write_text(json.dumps({
        "source": str(gguf_path), "source_name": gguf_path.name, "route": "gguf dequantised by "
        "transformers to float32", "parameters": int(sum(p.numel() for p in model.parameters())),
        "architecture": model.config.model_type}, indent=2))
    if target.exists():
        shutil.rmtree(target)
    tmp.replace(target)
    return target


def base_info(model_dir: Path) -> dict:
    """Provenance of a base directory (the GGUF it came from), or just its path."""
    f = Path(model_dir) / PROVENANCE
    return json.loads(f.read_text()) if f.is_file() else {"source": str(model_dir)}
