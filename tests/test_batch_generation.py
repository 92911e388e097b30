"""Resumable batch generation against a real OpenAI-compatible server (llama.cpp's, with the
Gemma 3 270M GGUF): killed with SIGKILL halfway, resumed, every message stored exactly once."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from adpilot.backends.llm import GenerationParams, get_backend
from adpilot.backends.llm.models import model_path
from adpilot.cli import main
from adpilot.errors import InputError
from adpilot.generation.batch import Ledger, check_briefs, generate_batch


def _briefs(shared_data: Path, n: int) -> pd.DataFrame:
    """One brief per real review title (women's clothing file, first rows with a title)."""
    df = pd.read_csv(shared_data / "reviews" / "womens_clothing_ecommerce_reviews.csv", nrows=400)
    titles = df["Title"].dropna().head(n).tolist()
    return pd.DataFrame({"key": [f"m{i:04d}" for i in range(len(titles))],
                         "prompt": [f"Write a short ad line about: {t}" for t in titles]})


def test_briefs_need_unique_keys_and_a_prompt():
    with pytest.raises(InputError, match="unique"):
        check_briefs(pd.DataFrame({"key": ["a", "a"], "prompt": ["x", "y"]}))
    with pytest.raises(InputError, match="prompt"):
        check_briefs(pd.DataFrame({"key": ["a"]}))


def test_ledger_refuses_a_second_row_for_a_key(tmp_path):
    from adpilot.backends.llm.base import Completion

    with Ledger(tmp_path / "l.sqlite") as book:
        book.record("k1", Completion("hi"), run=1)
        with pytest.raises(sqlite3.IntegrityError):
            book.record("k1", Completion("again"), run=2)
        assert book.done_keys() == {"k1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """llama.cpp's own server (xllamacpp, ``adpilot.backends.llm.local_server``) with the Gemma 3
    270M GGUF on 127.0.0.1, in a process of its own."""
    pytest.importorskip("xllamacpp")
    import httpx

    cache = os.environ.get("ADPILOT_TEST_MODELS") or tmp_path_factory.mktemp("models")
    try:
        gguf = model_path("gemma3-270m-q4_k_m", cache_dir=Path(cache))
    except Exception as exc:  # parts not installed: the llm-test extra is missing
        pytest.skip(f"small GGUF unavailable: {exc}")
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "adpilot.backends.llm.local_server", "--model", str(gguf),
         "--port", str(port), "--n-ctx", "1024", "--alias", "gemma-test",
         "--chat-template", "gemma"],  # the base GGUF has no chat template of its own
        stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120  # a loaded machine: poll, never a fixed wait
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


def _count(ledger: Path) -> int:
    if not ledger.exists():
        return 0
    con = sqlite3.connect(ledger, timeout=5)
    try:
        return con.execute("SELECT count(*) FROM messages").fetchone()[0]
    except sqlite3.OperationalError:  # table not created yet
        return 0
    finally:
        con.close()


@pytest.mark.slow
def test_killed_halfway_and_resumed_stores_every_message_once(server, shared_data, tmp_path):
    briefs = _briefs(shared_data, 40)
    path = tmp_path / "briefs.csv"
    briefs.to_csv(path, index=False)
    ledger = tmp_path / "ledger.sqlite"
    args = ["generate-batch", "--briefs", str(path), "--ledger", str(ledger), "--base-url",
            server, "--model", "gemma-test", "--concurrency", "4", "--max-tokens", "6"]
    proc = subprocess.Popen([sys.executable, "-m", "adpilot", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _count(ledger) < 10 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # no cleanup, no flush: a crash
    proc.wait()
    before = _count(ledger)
    assert 10 <= before < 40, f"the kill should land halfway, {before} were stored"

    assert main([*args, "--json", "--out", str(tmp_path / "messages.parquet")]) == 0
    with Ledger(ledger) as book:
        stored, runs = book.messages(), book.runs()
    assert len(stored) == 40 and stored["key"].is_unique
    assert set(stored["key"]) == set(briefs["key"])
    assert (stored["completion_tokens"] > 0).all()
    # the resumed run sent only what was missing, and the first run's rows were kept as they were
    assert runs["done_before"].tolist() == [0, before]
    assert runs["pending"].tolist() == [40, 40 - before]
    assert stored.groupby("run").size().to_dict() == {1: before, 2: 40 - before}
    assert len(pd.read_parquet(tmp_path / "messages.parquet")) == 40
    # a third run has nothing left to do
    assert main(args) == 0
    with Ledger(ledger) as book:
        assert book.count() == 40 and book.runs()["pending"].tolist()[-1] == 0


@pytest.mark.slow
def test_unreachable_server_is_retried_recorded_and_resumed(server, shared_data, tmp_path):
    briefs = _briefs(shared_data, 6)
    params = GenerationParams(max_tokens=4, temperature=0.0)
    dead = get_backend("openai", base_url=f"http://127.0.0.1:{_free_port()}/v1", model="x",
                       max_retries=2, backoff=0.01, concurrency=2)
    with Ledger(tmp_path / "l.sqlite") as book:
        first = generate_batch(briefs, dead, book, params, concurrency=2)
        assert (first.generated, first.failed) == (0, 6)
        assert "failed after 3 tries" in pd.read_sql_query("SELECT error FROM failures",
                                                          book._con)["error"].iloc[0]
        live = get_backend("openai", base_url=server, model="gemma-test", concurrency=2)
        second = generate_batch(briefs, live, book, params, concurrency=2)
        assert (second.done_before, second.generated, second.failed) == (0, 6, 0)
        assert book.count() == 6
    dead.close()
    live.close()


@pytest.mark.slow
def test_ray_actors_generate_the_rest_of_a_started_batch(server, shared_data, tmp_path):
    pytest.importorskip("ray")
    from adpilot.backends.executor import get_executor

    briefs = _briefs(shared_data, 12)
    params = GenerationParams(max_tokens=4, temperature=0.0)
    live = get_backend("openai", base_url=server, model="gemma-test", concurrency=2)
    with Ledger(tmp_path / "l.sqlite") as book:
        first = generate_batch(briefs.head(5), live, book, params, concurrency=2)
        ex = get_executor("ray", num_cpus=2, num_actors=2, object_store_memory=256 << 20,
                          show_progress=False)
        try:
            rest = generate_batch(briefs, live, book, params, concurrency=2, executor=ex,
                                  stage_options={"base_url": server, "model": "gemma-test"})
        finally:
            ex.close()
        stored = book.messages()
    live.close()
    assert (first.generated, rest.done_before, rest.generated, rest.failed) == (5, 5, 7, 0)
    assert sorted(stored["key"]) == sorted(briefs["key"])
    assert stored.groupby("run").size().to_dict() == {1: 5, 2: 7}
    assert (stored["completion_tokens"] > 0).all()
