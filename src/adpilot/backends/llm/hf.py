"""Any local Hugging Face causal-LM directory (how fine-tuned generators are served)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from adpilot.backends import llm
from adpilot.deps import require


@llm.register_backend("transformers")
class TransformersBackend(llm.LLMBackend):
    """``model_dir`` holds ``config.json``, weights and a tokenizer (the shells pass the generator
    promoted in the model registry when the user names none: ``adpilot.usecases.llm``). The
    tokenizer's chat template formats the conversation when it has one; otherwise
    ``role: content`` lines."""

    name = "transformers"

    def __init__(self, model_dir: str | Path, *, device: str = "cpu") -> None:
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise llm.LLMError(f"{self.model_dir} is not a Hugging Face model directory (no config.json)")
        self.device = device
        self._model = self._tok = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return f"transformers:{self.model_dir.resolve()}"

    def _load(self):
        if self._model is None:
            tf = require("transformers", feature="the transformers backend")
            self._tok = tf.AutoTokenizer.from_pretrained(self.model_dir)
            self._model = tf.AutoModelForCausalLM.from_pretrained(self.model_dir).to(self.device)
            self._model.eval()
        return self._model, self._tok

    def _prompt(self, tok, messages: Sequence[llm.Message]) -> str:
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template([m.as_dict() for m in messages], tokenize=False,
                                           add_generation_prompt=True)
        return "".join(f"{m.role}: {m.content}\n" for m in messages) + "assistant:"

    def complete(self, messages: Sequence[llm.Message], params: llm.GenerationParams) -> llm.Completion:
        torch = require("torch", feature="the transformers backend")
        with self._lock:
            model, tok = self._load()
            ids = tok(self._prompt(tok, messages), return_tensors="pt").to(self.device)
            room = model.config.max_position_embeddings - ids["input_ids"].shape[1]
            if room < 1:
                raise llm.LLMError(f"prompt of {ids['input_ids'].shape[1]} tokens does not fit the "
                                   f"model's context of {model.config.max_position_embeddings}")
            sample = params.temperature > 0
            if params.seed is not None:
                torch.manual_seed(params.seed)
            started = time.perf_counter()
            with torch.no_grad():
                out = model.generate(**ids, max_new_tokens=min(params.max_tokens, room),
                                     do_sample=sample,
                                     temperature=params.temperature if sample else None,
                                     pad_token_id=tok.pad_token_id or tok.eos_token_id or 0)
            seconds = time.perf_counter() - started
        new = out[0, ids["input_ids"].shape[1]:]
        return llm.Completion(tok.decode(new, skip_special_tokens=True),
                              llm.Usage(int(ids["input_ids"].shape[1]), int(new.shape[0])), seconds,
                              self.model_id)
