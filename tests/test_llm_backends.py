"""LLM backends: registry, structured loop, GGUF assembly, a tiny real transformers model, and
the OpenAI-compatible backend against a real llama.cpp server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from pathlib import Path

import pytest

from adpilot.backends.llm import (
    Completion,
    GenerationParams,
    LLMError,
    Message,
    StructuredOutputError,
    Usage,
    available_backends,
    extract_json,
    get_backend,
    structured,
)
from adpilot.backends.llm.models import MODELS, assemble, model_path
from adpilot.errors import ArtifactMismatchError, ConfigError
from adpilot.generation.channels import channel_spec


def tiny_gpt2(directory: Path) -> Path:
    """A random-weight GPT-2 with a byte-level BPE tokenizer trained here: real code paths, junk text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(['{"text": "Soft linen shirt for summer"}', "system: user: assistant:",
                             "透气亚麻衬衫，夏天清爽"] * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    fast.save_pretrained(directory)
    cfg = GPT2Config(vocab_size=fast.vocab_size, n_positions=8192, n_embd=32, n_layer=2, n_head=2,
                     eos_token_id=fast.eos_token_id, bos_token_id=fast.eos_token_id)
    GPT2LMHeadModel(cfg).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    pytest.importorskip("transformers")
    return tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))


# --- registry and parameters ------------------------------------------------------------------

def test_registry_names_and_unknown_backend():
    assert {"llamacpp", "openai", "transformers"} <= set(available_backends())
    with pytest.raises(ConfigError, match="unknown LLM backend 'nope'; expected one of .*llamacpp"):
        get_backend("nope")


def test_params_are_checked_with_one_message_form():
    with pytest.raises(ConfigError, match=r"'temperature' parameter of GenerationParams must be a "
                                          r"float in \[0, 2\]. Got 3"):
        GenerationParams(temperature=3)


def test_openai_backend_needs_a_url(monkeypatch):
    monkeypatch.delenv("ADPILOT_LLM_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="base URL"):
        get_backend("openai")


def test_openai_backend_retries_then_names_the_server():
    with socket.socket() as s:  # a port nobody listens on: connection refused, every try
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = get_backend("openai", base_url=f"http://127.0.0.1:{port}/v1", max_retries=2,
                          backoff=0.01, timeout=2)
    started = time.perf_counter()
    with pytest.raises(LLMError, match=rf"127.0.0.1:{port}/v1 failed after 3 tries"):
        backend.complete([Message("user", "hi")], GenerationParams(max_tokens=4))
    assert time.perf_counter() - started < 10


# --- structured loop --------------------------------------------------------------------------

def test_structured_reasks_with_the_error_and_counts_usage():
    replies = iter(['no json here', '{"text": ""}', 'Sure! ```json\n{"text": "Linen days"}\n```'])
    seen: list[list[Message]] = []

    def call(convo):
        seen.append(list(convo))
        return Completion(next(replies), Usage(10, 5))

    schema = channel_spec("sms", "en").schema()
    result = structured(call, [Message("user", "write")], schema, max_attempts=3)
    assert result.value.text == "Linen days"
    assert len(result.attempts) == 3 and result.usage.total_tokens == 45
    assert "not valid JSON" in seen[1][-1].content and "text" in seen[2][-1].content


def test_structured_error_carries_attempts_and_usage():
    schema = channel_spec("sms", "en").schema()
    with pytest.raises(StructuredOutputError) as info:
        structured(lambda convo: Completion("nope", Usage(7, 3)), [Message("user", "x")], schema,
                   max_attempts=2)
    err = info.value
    assert len(err.attempts) == 2 and err.usage.total_tokens == 20
    assert "2 attempt(s), 20 tokens" in str(err)


def test_usage_reads_an_openai_usage_object_and_missing_counts_as_zero():
    reply = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
    assert Usage.from_openai(reply) == Usage(12, 5)
    assert Usage.from_openai({"prompt_tokens": 4}) == Usage(4, 0)
    assert Usage.from_openai(None) == Usage.from_openai({}) == Usage(0, 0)


# --- GGUF assembly ----------------------------------------------------------------------------

def test_assemble_streams_parts_and_verifies(tmp_path):
    parts = []
    for i, data in enumerate([b"GGUF" + b"a" * 1000, b"b" * 777, b"c"]):
        p = tmp_path / f"part{i}"
        p.write_bytes(data)
        parts.append(p)
    whole = b"".join(p.read_bytes() for p in parts)
    target = tmp_path / "cache" / "m.gguf"
    with pytest.raises(ArtifactMismatchError, match="sha256"):
        assemble(parts, target, sha256="0" * 64)
    assert not target.exists() and not list(target.parent.glob("*.partial"))
    with pytest.raises(ArtifactMismatchError, match="bytes"):
        assemble(parts, target, sha256=hashlib.sha256(whole).hexdigest(), size=5)
    out = assemble(parts, target, sha256=hashlib.sha256(whole).hexdigest(), size=len(whole))
    assert out.read_bytes() == whole and (tmp_path / "cache" / "m.gguf.verified").is_file()


def test_unknown_model_name():
    with pytest.raises(ConfigError, match="unknown model 'x'; known: .*qwen2.5"):
        model_path("x")


def test_a_registered_model_needs_the_models_folder_passed_in(tmp_path, isolated_home):
    """The library reads no settings: a registered name is assembled only into a folder the
    caller names (the CLI and API pass Settings.models_dir through backend_options)."""
    from adpilot.backends.llm.llamacpp import resolve_model
    from adpilot.usecases.llm import backend_options

    with pytest.raises(ConfigError, match="pass its folder"):
        model_path("gemma3-270m-q4_k_m")
    with pytest.raises(ConfigError, match="pass its folder"):
        resolve_model("gemma3-270m-q4_k_m")
    gguf = tmp_path / "any.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_model(gguf) == gguf  # a path needs no folder
    assert backend_options("llamacpp", None, None, models_dir=tmp_path) == {"models_dir": tmp_path}
    assert backend_options("llamacpp", None, None, models_dir=tmp_path, parallel=4) == {
        "models_dir": tmp_path, "parallel": 4}
    assert backend_options("openai", "m", "http://x/v1", models_dir=tmp_path) == {
        "base_url": "http://x/v1", "model": "m"}
    assert not (isolated_home / "cache").exists()


def test_qwen_spec_is_pinned():
    spec = MODELS["qwen2.5-coder-1.5b-instruct-q4_k_m"]
    assert len(spec.part_modules) == 22 and spec.size == 1_117_320_768
    assert spec.sha256.startswith("cc324af0")


# --- transformers backend ---------------------------------------------------------------------

def test_transformers_backend_generates_and_counts_tokens(tiny_model_dir):
    backend = get_backend("transformers", model_dir=tiny_model_dir)
    out = backend.complete([Message("system", "be brief"), Message("user", "hello")],
                           GenerationParams(max_tokens=12, temperature=0.0))
    assert out.usage.prompt_tokens > 0 and 0 < out.usage.completion_tokens <= 12
    assert isinstance(out.text, str) and out.seconds > 0
    assert backend.model_id.startswith("transformers:")


def test_transformers_backend_rejects_a_non_model_dir(tmp_path):
    with pytest.raises(LLMError, match="no config.json"):
        get_backend("transformers", model_dir=tmp_path)


# --- OpenAI-compatible backend against a real llama.cpp server --------------------------------

@pytest.fixture(scope="module")
def small_gguf(tmp_path_factory) -> Path:
    cache = os.environ.get("ADPILOT_TEST_MODELS") or tmp_path_factory.mktemp("models")
    try:
        return model_path("gemma3-270m-q4_k_m", cache_dir=Path(cache))
    except Exception as exc:  # parts not installed: the llm-test extra is missing
        pytest.skip(f"small GGUF unavailable: {exc}")


@pytest.fixture(scope="module")
def llama_server(small_gguf):
    """llama.cpp's own server (xllamacpp) with the small Gemma 3 270M GGUF on 127.0.0.1."""
    pytest.importorskip("xllamacpp")
    import httpx

    from adpilot.backends.llm.local_server import start_server

    # the base GGUF has no chat template of its own: llama.cpp's built-in "gemma" one
    with start_server(small_gguf, n_ctx=1024, parallel=2, alias="gemma-test",
                      chat_template="gemma") as srv:
        deadline = time.monotonic() + 120  # a loaded machine: poll, never a fixed wait
        while httpx.get(f"{srv.url}/models", timeout=5).status_code != 200:
            if time.monotonic() > deadline:
                pytest.fail("llama.cpp server did not answer /v1/models in 120 s")
            time.sleep(0.25)
        yield srv.url


@pytest.mark.slow
def test_in_process_slots_decode_the_generators_requests_together(small_gguf):
    """``parallel`` slots are used by ``CopyGenerator.map`` (through ``concurrency``): two
    requests are in flight at once (one starts before the other ends)."""
    pytest.importorskip("xllamacpp")
    from adpilot.backends.llm.llamacpp import LlamaCppBackend
    from adpilot.generation import CopyGenerator

    backend = LlamaCppBackend(small_gguf, n_ctx=512, parallel=2, chat_template="gemma")
    assert backend.concurrency == 2
    backend._load()
    params = GenerationParams(max_tokens=48, temperature=0.0)
    gen = CopyGenerator(backend, cache=False)

    def timed(i: int) -> tuple[float, float, int]:
        started = time.perf_counter()
        out = backend.complete([Message("user", f"Describe a linen shirt, number {i}.")], params)
        return started, time.perf_counter(), out.usage.completion_tokens

    spans = gen.map(timed, range(2))
    assert all(tokens > 0 for _, _, tokens in spans)
    assert max(s for s, _, _ in spans) < min(e for _, e, _ in spans), spans  # they overlapped
    backend.close()


@pytest.mark.slow
def test_openai_backend_against_real_server(llama_server):
    backend = get_backend("openai", base_url=llama_server, model="gemma-test", concurrency=2)
    from adpilot.generation import load_brand
    from adpilot.generation.generator import output_schema

    # the length cap in the schema keeps the reply inside max_tokens, so the JSON always closes
    schema = output_schema(channel_spec("sms", "en"), load_brand())
    schema["properties"]["text"]["maxLength"] = 60
    params = GenerationParams(max_tokens=120, temperature=0.0, json_schema=schema)
    msgs = [[Message("user", f"Write a JSON SMS about linen shirts, number {i}.")] for i in range(2)]
    outs = backend.complete_many(msgs, params)
    assert len(outs) == 2
    for out in outs:
        assert out.usage.completion_tokens > 0 and out.usage.prompt_tokens > 0
        # the schema became a grammar on the server: exactly the schema's keys, nothing invented
        assert set(extract_json(out.text)) == {"text"}, out.text
    backend.close()


@pytest.mark.slow
@pytest.mark.parametrize("form", ["llguidance", "json_schema", "schema", "json_object"])
def test_llama_server_enforces_the_schema_forms(llama_server, form):
    """A reply no model writes unprompted: only a schema the server enforces yields it. The
    standard json_schema form, llama.cpp's own and its LLGuidance grammar are; plain JSON mode
    is not."""
    backend = get_backend("openai", base_url=llama_server, model="gemma-test", max_retries=0,
                          response_format=form)
    schema = {"type": "object", "required": ["text"],
              "properties": {"text": {"type": "string", "enum": ["zq-42 linen"]}}}
    out = backend.complete([Message("user", "Say hello.")],
                           GenerationParams(max_tokens=30, temperature=0.0, json_schema=schema))
    assert (out.text.replace(" ", "").replace("\n", "") == '{"text":"zq-42linen"}') is (
        form != "json_object"), out.text
    assert backend.enforces_schema is (form != "json_object")  # the server took the form as sent
    if form == "llguidance":  # the in-process backend's grammar: compact, one way to write it
        assert out.text == '{"text": "zq-42 linen"}', out.text
    backend.close()


def test_local_server_refuses_clients_without_its_key(small_gguf):
    pytest.importorskip("xllamacpp")
    import httpx

    from adpilot.backends.llm.local_server import start_server

    with start_server(small_gguf, n_ctx=256, api_key="s3cret") as srv:
        assert srv.url.startswith("http://127.0.0.1:")
        body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        assert httpx.post(f"{srv.url}/chat/completions", json=body, timeout=60).status_code == 401
        ok = httpx.post(f"{srv.url}/chat/completions", json=body, timeout=60,
                        headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] > 0


# --- llamacpp backend (xllamacpp, in-process) ---------------------------------------------------

def test_grammar_schema_closes_objects_and_bounds_whitespace():
    from adpilot.backends.llm.llamacpp import grammar_schema

    schema = {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {}}}},
              "$defs": {"X": {"type": "object", "properties": {}, "additionalProperties": True}}}
    out = grammar_schema(schema)
    assert out["additionalProperties"] is False
    assert out["properties"]["a"]["additionalProperties"] is False
    assert out["$defs"]["X"]["additionalProperties"] is True  # an explicit choice is kept
    assert out["x-guidance"]["whitespace_flexible"] is False
    assert "additionalProperties" not in schema and "x-guidance" not in schema  # a copy


@pytest.fixture(scope="module")
def small_llamacpp(small_gguf):
    pytest.importorskip("xllamacpp")
    backend = get_backend("llamacpp", model=small_gguf, n_ctx=512, chat_template="gemma")
    yield backend
    backend.close()


@pytest.mark.slow
def test_llamacpp_backend_structured_output_is_the_schema(small_gguf, small_llamacpp):
    schema = channel_spec("sms", "en").schema()
    json_schema = schema.model_json_schema()
    json_schema["properties"]["text"]["maxLength"] = 60
    params = GenerationParams(max_tokens=80, temperature=0.0, json_schema=json_schema)
    result = structured(lambda convo: small_llamacpp.complete(convo, params),
                        [Message("user", "Write a JSON SMS about linen shirts.")], schema)
    assert result.value.text and len(result.value.text) <= 60
    assert set(extract_json(result.attempts[0].text)) == {"text"}  # no invented keys
    assert result.attempts[0].text.startswith('{"text": "')  # no whitespace runs to pay for
    assert result.usage.completion_tokens < 80  # closed by the grammar, not cut by max_tokens
    assert small_llamacpp.model_id == f"llamacpp:{small_gguf.name}"


@pytest.mark.slow
def test_llamacpp_backend_is_deterministic_and_names_context_overflow(small_llamacpp):
    params = GenerationParams(max_tokens=8, temperature=0.0)
    msgs = [Message("user", "Name a summer fabric.")]
    first, again = small_llamacpp.complete(msgs, params), small_llamacpp.complete(msgs, params)
    assert first.text == again.text and first.usage.completion_tokens > 0 and first.seconds > 0
    with pytest.raises(LLMError, match="exceeds the available context size"):
        small_llamacpp.complete([Message("user", "linen " * 1000)], params)


def test_llamacpp_backend_checks_its_files(tmp_path):
    pytest.importorskip("xllamacpp")
    with pytest.raises(LLMError, match="GGUF model file .*missing.gguf does not exist"):
        get_backend("llamacpp", model=tmp_path / "missing.gguf").complete(
            [Message("user", "hi")], GenerationParams(max_tokens=2))


def random_lora(base: Path, out: Path, *, rank: int = 4, seed: int = 0) -> Path:
    """A GGUF LoRA adapter for ``base`` with random A and B on every attention query
    projection: real adapter loading, loud enough to change a greedy reply."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(base)
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    writer = gguf.GGUFWriter(out, arch)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(rank))
    rng = np.random.default_rng(seed)
    for t in reader.tensors:
        if t.name.endswith("attn_q.weight"):
            n_in, n_out = (int(x) for x in t.shape[:2])  # ggml order: ne[0] is the input dim
            stem = t.name.removesuffix(".weight")
            writer.add_tensor(f"{stem}.weight.lora_a", rng.normal(0, 0.5, (rank, n_in)).astype("f4"))
            writer.add_tensor(f"{stem}.weight.lora_b", rng.normal(0, 0.5, (n_out, rank)).astype("f4"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


@pytest.mark.slow
def test_llamacpp_backend_applies_a_lora_adapter(small_gguf, small_llamacpp, tmp_path):
    pytest.importorskip("gguf")
    lora = random_lora(small_gguf, tmp_path / "random-lora.gguf")
    msgs, params = [Message("user", "Name a summer fabric.")], GenerationParams(max_tokens=8,
                                                                               temperature=0.0)
    base = small_llamacpp.complete(msgs, params).text
    tuned = get_backend("llamacpp", model=small_gguf, n_ctx=512, chat_template="gemma",
                        lora_path=lora)
    off = get_backend("llamacpp", model=small_gguf, n_ctx=512, chat_template="gemma",
                      lora_path=lora, lora_scale=0.0)
    try:
        assert tuned.complete(msgs, params).text != base  # the adapter is applied...
        assert off.complete(msgs, params).text == base  # ...at its scale
        assert tuned.model_id == f"llamacpp:{small_gguf.name}+lora:random-lora.gguf@1"
        assert tuned.model_id != small_llamacpp.model_id  # caches keep tuned replies apart
    finally:
        tuned.close()
        off.close()
    with pytest.raises(LLMError, match="LoRA adapter file .*nope.gguf does not exist"):
        get_backend("llamacpp", model=small_gguf, lora_path=tmp_path / "nope.gguf").complete(
            msgs, params)


def test_prompt_reading_gets_every_core_and_decoding_its_own_threads(tmp_path, monkeypatch):
    """llama.cpp reads a prompt with ``n_threads_batch`` and decodes with ``n_threads``: the
    backend gives the first every core (compute-bound) and leaves the second at one per
    physical core unless told otherwise."""
    from adpilot.backends.llm.llamacpp import LlamaCppBackend, default_batch_threads, server_params

    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    p = server_params(model, n_ctx=512, n_threads=1, n_threads_batch=3)
    assert (p.cpuparams.n_threads, p.cpuparams_batch.n_threads) == (1, 3)
    assert server_params(model, n_ctx=512, n_threads=2).cpuparams_batch.n_threads == 2
    monkeypatch.delenv("ADPILOT_LLM_BATCH_THREADS", raising=False)
    assert LlamaCppBackend(model, n_threads=1).n_threads_batch == os.cpu_count()
    monkeypatch.setenv("ADPILOT_LLM_BATCH_THREADS", "5")
    assert default_batch_threads() == 5 and LlamaCppBackend(model).n_threads_batch == 5
