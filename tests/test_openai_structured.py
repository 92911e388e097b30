"""The openai backend's structured output: what it sends as ``response_format`` and how it falls
back to JSON mode when a server refuses the schema form. The server is a real HTTP server on
127.0.0.1 (a small FastAPI app under uvicorn) that checks each request body as an older
llama.cpp server does; the real llama.cpp server is in test_llm_backends.py."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time

import pytest

from adpilot.backends.llm import GenerationParams, LLMError, Message, get_backend

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
from fastapi import FastAPI, Request  # noqa: E402 (after the skip)
from fastapi.responses import JSONResponse  # noqa: E402

SCHEMA = {"title": "Sms Copy", "type": "object", "required": ["text"],
          "properties": {"text": {"type": "string", "maxLength": 60}}}
PARAMS = GenerationParams(max_tokens=40, temperature=0.0, json_schema=SCHEMA)


class ChatStub:
    """An OpenAI-style chat server that takes only the ``response_format`` types in ``accepts``
    and answers any other with ``status`` and llama.cpp's message naming response_format;
    without ``schema_key`` it also refuses a ``schema`` inside json_object (llama.cpp's form),
    without ``grammar`` a ``grammar`` field (as a server without LLGuidance does)."""

    def __init__(self, accepts: set[str], status: int = 400, schema_key: bool = True,
                 grammar: bool = True) -> None:
        import uvicorn

        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            body = await request.json()
            with self.lock:
                self.bodies.append(body)
            if not body.get("messages"):
                return JSONResponse({"error": {"code": 400, "message": "'messages' is required",
                                               "type": "invalid_request_error"}}, status_code=400)
            kind = (body.get("response_format") or {}).get("type", "text")
            if not grammar and "grammar" in body:
                return JSONResponse({"error": {"code": 400, "message": "Failed to parse grammar"}},
                                    status_code=400)
            if not schema_key and "schema" in (body.get("response_format") or {}):
                return JSONResponse({"error": {"code": 400, "message": "response_format: unknown "
                                               "key 'schema'"}}, status_code=400)
            if kind not in accepts:
                msg = ('response_format type must be one of "text" or "json_object", but got: '
                       f"{kind}")
                return JSONResponse({"error": {"code": status, "message": msg,
                                               "type": "invalid_request_error"}},
                                    status_code=status)
            content = json.dumps({"text": f"Linen shirts, {kind}. Shop now."})
            return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 11, "completion_tokens": 7}}

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def kinds(self) -> list[str]:
        return [(b.get("response_format") or {}).get("type", "text") for b in self.bodies]

    def __enter__(self) -> ChatStub:
        self.thread.start()
        deadline = time.monotonic() + 60  # a loaded machine: poll, never a fixed wait
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the chat stub did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def ask(backend, n: int = 1) -> list[str]:
    msgs = [[Message("user", f"Write an SMS about linen shirts, number {i}.")] for i in range(n)]
    return [c.text for c in backend.complete_many(msgs, PARAMS)]


def test_the_schema_goes_out_as_strict_structured_output():
    with ChatStub({"json_schema", "json_object"}) as srv:
        backend = get_backend("openai", base_url=srv.url, max_retries=0)
        assert backend.enforces_schema
        assert ask(backend) == ['{"text": "Linen shirts, json_schema. Shop now."}']
        fmt = srv.bodies[0]["response_format"]
        assert fmt["json_schema"]["name"] == "Sms_Copy" and fmt["json_schema"]["strict"] is True
        schema = fmt["json_schema"]["schema"]
        # closed, the length cap kept, nothing llama.cpp-only, and the caller's schema untouched
        assert schema["additionalProperties"] is False and "x-guidance" not in schema
        assert schema["properties"]["text"]["maxLength"] == 60 and "additionalProperties" not in SCHEMA
        backend.close()


@pytest.mark.parametrize("status", [400, 500])  # 500: how older llama.cpp forks refuse it
def test_a_refused_schema_form_falls_back_to_json_mode_once_and_is_remembered(status, caplog):
    with ChatStub({"json_object"}, status=status) as srv:
        backend = get_backend("openai", base_url=srv.url, max_retries=2, backoff=0.01)
        with caplog.at_level(logging.WARNING, logger="adpilot.backends.llm.openai_compat"):
            first = ask(backend)
            assert srv.kinds() == ["json_schema", "json_object"]  # asked again at once, no retries
            second = ask(backend, 2)
        assert first + second == ['{"text": "Linen shirts, json_object. Shop now."}'] * 3
        assert srv.kinds()[2:] == ["json_object", "json_object"]  # remembered: no new refusals
        assert not backend.enforces_schema and backend.response_format == "json_object"
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 1 and "refused response_format 'json_schema'" in warnings[0]
        backend.close()


def test_concurrent_refusals_are_logged_once(caplog):
    with ChatStub({"json_object"}) as srv:
        backend = get_backend("openai", base_url=srv.url, max_retries=0, concurrency=4)
        with caplog.at_level(logging.WARNING, logger="adpilot.backends.llm.openai_compat"):
            assert len(ask(backend, 4)) == 4
        assert len(caplog.records) == 1 and srv.kinds().count("json_schema") >= 1
        backend.close()


def test_llamacpp_schema_form_falls_back_too():
    # "schema" puts the schema inside json_object (llama.cpp's form): a server may refuse that too
    with ChatStub({"json_object"}, schema_key=False) as srv:
        backend = get_backend("openai", base_url=srv.url, max_retries=0, response_format="schema")
        assert ask(backend) == ['{"text": "Linen shirts, json_object. Shop now."}']
        assert [b["response_format"] for b in srv.bodies][1] == {"type": "json_object"}
        assert "schema" in srv.bodies[0]["response_format"] and not backend.enforces_schema
        backend.close()


def test_other_refusals_are_errors_not_fallbacks():
    with ChatStub({"json_object"}) as srv:
        backend = get_backend("openai", base_url=srv.url, max_retries=2, backoff=0.01)
        with pytest.raises(LLMError, match="HTTP 400.*'messages' is required"):
            backend.complete([], PARAMS)
        assert srv.kinds() == ["json_schema"] and backend.enforces_schema
        backend.close()


def test_a_server_refusing_json_mode_as_well_is_an_error():
    with ChatStub(set()) as srv:
        backend = get_backend("openai", base_url=srv.url, max_retries=0)
        with pytest.raises(LLMError, match="HTTP 400.*but got: json_object"):
            ask(backend)
        assert srv.kinds() == ["json_schema", "json_object"]  # one fallback, then the error
        backend.close()


def test_llguidance_sends_the_in_process_grammar_and_falls_back_in_order(caplog, monkeypatch):
    monkeypatch.setenv("ADPILOT_LLM_RESPONSE_FORMAT", "llguidance")  # the default form, by env
    with ChatStub({"json_object"}, grammar=False) as srv:
        backend = get_backend("openai", base_url=srv.url, max_retries=0)
        assert backend.response_format == "llguidance" and backend.enforces_schema
        with caplog.at_level(logging.WARNING, logger="adpilot.backends.llm.openai_compat"):
            assert ask(backend) == ['{"text": "Linen shirts, json_object. Shop now."}']
        first = srv.bodies[0]
        assert "response_format" not in first
        head, schema = first["grammar"].split(" %json ", 1)
        assert head == "%llguidance {}\nstart:"
        assert json.loads(schema)["x-guidance"]["whitespace_flexible"] is False
        # no LLGuidance: the standard form next; refused as well: JSON mode
        assert srv.kinds() == ["text", "json_schema", "json_object"]
        assert "grammar" not in srv.bodies[1] and len(caplog.records) == 2
        assert backend.response_format == "json_object"
        backend.close()
