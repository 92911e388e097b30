"""``adpilot generate-batch --products``: the catalogue path (``adpilot generate --products``)
with the ``openai`` backend, its client options (``--max-retries``, ``--backoff``,
``--timeout``) honoured, and the ``--briefs``-only options refused by name.

The server is real HTTP on 127.0.0.1 each time: a small stub (``http.server``) that answers
503 to its first N requests and then replies with each product's copy, counting what it got;
and, marked slow, llama.cpp's own server (``adpilot.backends.llm.local_server``) with the local
Qwen GGUF. The CLI is run through typer's ``CliRunner``.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adpilot.cli import app

PRODUCTS = [
    {"id": "p1", "title": "Linen shirt", "category": "Tops",
     "description": "breathable linen, relaxed fit"},
    {"id": "p2", "title": "Wool scarf", "category": "Accessories", "price": 39.0,
     "currency": "USD", "description": "soft merino wool"},
    {"id": "p3", "title": "Canvas tote", "category": "Bags",
     "attributes": {"colour": "navy", "material": ["cotton", "canvas"]}},
]
COPY = {
    "Linen shirt": "Breathable linen shirt with a relaxed fit for warm days.",
    "Wool scarf": "A soft merino wool scarf for cold mornings, now 39 USD.",
    "Canvas tote": "A roomy navy cotton canvas tote for books, lunch and more.",
}


class StubServer:
    """An OpenAI-compatible chat endpoint on 127.0.0.1: 503 to the first ``fail_first``
    requests, then the copy of the product named in the prompt. ``asked`` holds each
    request's product title and status, in arrival order."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.asked: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")
                title = next((t for t in COPY if t in prompt), "?")
                with stub._lock:
                    status = 503 if len(stub.asked) < stub.fail_first else 200
                    stub.asked.append((title, status))
                if status == 503:
                    payload = {"error": "overloaded, try again"}
                else:
                    text = json.dumps({"text": COPY.get(title, "")})
                    payload = {"choices": [{"message": {"role": "assistant", "content": text}}],
                               "usage": {"prompt_tokens": len(prompt) // 4,
                                         "completion_tokens": len(text) // 4}}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def statuses(self, title: str) -> list[int]:
        """The statuses this server answered for ``title``'s requests, in order."""
        return [s for t, s in self.asked if t == title]

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def stub(request):
    server = StubServer(getattr(request, "param", 0))
    yield server
    server.close()


@pytest.fixture(autouse=True)
def no_copy_model_data(tmp_path, monkeypatch):
    """The stub tests are about the HTTP client: the complaint guardrail runs its stated
    fallback (no data folder, offline) instead of training its classifier for a minute."""
    monkeypatch.setenv("ADPILOT_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("ADPILOT_OFFLINE", "1")


def catalogue(tmp_path: Path, records: list[dict]) -> Path:
    path = tmp_path / "catalogue.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def batch(tmp_path: Path, url: str, *extra: str, records: list[dict] = PRODUCTS):
    aud = tmp_path / "audience.json"
    aud.write_text(json.dumps({"description": "office workers who like natural fabrics"}))
    args = ["generate-batch", "--products", str(catalogue(tmp_path, records)), "--audience",
            str(aud), "--channel", "social", "--lang", "en", "-n", "1", "--best-of", "1",
            "--base-url", url, "--model", "stub", "--concurrency", "1",
            "--out", str(tmp_path / "copies.jsonl"), "--json", *extra]
    return CliRunner().invoke(app, args)


def lines_of(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("stub", [4], indirect=True)
def test_503s_are_retried_by_the_client_and_every_product_is_written(stub, tmp_path):
    # four failures: more than the client's default of three retries would survive
    res = batch(tmp_path, stub.url, "--max-retries", "4", "--backoff", "0.01", "--timeout", "5")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert (summary["read"], summary["written"], summary["skipped"]) == (3, 3, 0)
    assert stub.statuses("Linen shirt") == [503] * 4 + [200]  # four retries of one request
    assert [s for _, s in stub.asked].count(503) == 4
    out = lines_of(tmp_path / "copies.jsonl")
    assert [line["product_id"] for line in out] == ["p1", "p2", "p3"]
    for line, rec in zip(out, PRODUCTS, strict=True):
        v = line["variants"][0]
        assert v["text"].startswith(COPY[rec["title"]][:20])
        assert isinstance(v["violations"], list) and v["passed"] == (not v["violations"])


@pytest.mark.parametrize("stub", [1], indirect=True)
def test_without_retries_the_failed_product_is_reported_and_the_others_written(stub, tmp_path):
    res = batch(tmp_path, stub.url, "--max-retries", "0", "--backoff", "0.01")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    (failed,) = summary["skipped_records"]
    assert failed["product_id"] == "p1" and failed["line"] == 1
    assert "failed after 1 tries" in failed["reason"] and "HTTP 503" in failed["reason"]
    assert stub.statuses("Linen shirt") == [503]  # no retry was made
    assert [x["product_id"] for x in lines_of(tmp_path / "copies.jsonl")] == ["p2", "p3"]
    # the rerun (the server answers now) writes the failed product only
    again = json.loads(batch(tmp_path, stub.url, "--max-retries", "0").stdout)
    assert (again["done_before"], again["new"], again["skipped"]) == (2, 1, 0)
    assert stub.statuses("Linen shirt") == [503, 200] and len(stub.statuses("Wool scarf")) == 1
    assert sorted(x["product_id"] for x in lines_of(tmp_path / "copies.jsonl")) == [
        "p1", "p2", "p3"]


def test_a_timeout_is_passed_to_the_client(tmp_path):
    """A server that accepts and never answers: ``--timeout 1`` ends each try after a second."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        started = time.monotonic()
        res = batch(tmp_path, url, "--timeout", "1", "--max-retries", "1", "--backoff", "0",
                    records=PRODUCTS[:1])
        seconds = time.monotonic() - started
    assert res.exit_code == 0, res.output
    (failed,) = json.loads(res.stdout)["skipped_records"]
    assert "failed after 2 tries" in failed["reason"] and "Timeout" in failed["reason"]
    assert seconds < 30  # the default (120 s per try) would have taken four minutes


@pytest.mark.parametrize(("extra", "named"), [
    (["--executor", "ray"], "--executor ray is not supported with --products"),
    (["--executor", "ray", "--ray-address", "ray://h:10001"], "--ray-address"),
    (["--ledger", "l.sqlite"], "--ledger only apply to --briefs"),
    (["--max-tokens", "32", "--db", "sqlite:///x.db"], "--db, --max-tokens only apply"),
])
def test_briefs_only_options_are_refused_with_products(stub, tmp_path, extra, named):
    res = batch(tmp_path, stub.url, *extra)
    assert res.exit_code == 2
    said = " ".join(re.sub("[│╭╮╰╯─]", " ", res.output).split())  # rich's box, wrapped
    assert named in said, said
    assert stub.asked == [] and not (tmp_path / "copies.jsonl").exists()


# --- the real llama.cpp server with the local Qwen model (slow) --------------------------------

@pytest.fixture
def qwen_server(local_qwen, tmp_path):
    """llama.cpp's own server with the local Qwen GGUF on 127.0.0.1, in a process of its own."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "adpilot.backends.llm.local_server", "--model", str(local_qwen),
         "--port", str(port), "--n-ctx", "2048", "--alias", "qwen-test"],
        stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama.cpp server did not start in 120 s")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.slow
def test_real_llamacpp_server_writes_one_line_per_product(qwen_server, shared_data, tmp_path,
                                                          monkeypatch):
    monkeypatch.setenv("ADPILOT_DATA_DIR", str(shared_data))  # the real guardrail models
    monkeypatch.delenv("ADPILOT_OFFLINE")
    res = batch(tmp_path, qwen_server, "--model", "qwen-test", "--max-retries", "1",
                "--timeout", "300", records=PRODUCTS[1:])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert (summary["read"], summary["written"], summary["skipped"]) == (2, 2, 0), summary
    assert summary["completion_tokens"] > 0
    out = lines_of(tmp_path / "copies.jsonl")
    assert [line["product_id"] for line in out] == ["p2", "p3"]
    for line in out:
        (v,) = line["variants"]
        assert v["text"].strip() and v["fields"]["text"] == v["text"]
        # a 1.5B model's copy may fail a check; what is promised is that each result is reported
        assert isinstance(v["violations"], list) and v["passed"] == (not v["violations"])
        assert line["passed"] == v["passed"] and v["tokens"]["completion"] > 0
