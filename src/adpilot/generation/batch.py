"""Resumable batch generation against an OpenAI-compatible server (vLLM, llama.cpp, cloud).

Briefs are rows with a unique ``key`` and a ``prompt`` (optionally a ``system`` message). At most
``concurrency`` requests are in flight; each request is retried with exponential backoff on
transient failures (the ``openai`` backend's retry loop). Every finished message is committed to
a SQLite *ledger* (one row per key, WAL, synchronous) the moment it arrives, so a crash, SIGKILL
or Ctrl-C loses no finished work, and a rerun sends only the keys that have no row yet: no
message is generated into the ledger twice (a duplicate insert would fail on the primary key).
Requests that were in flight when the process died are sent again on resume — that is the only
work repeated, and never a stored message.

With an executor other than ``local`` (Ray), prompts run as a batch stage on actors, each with
its own bounded-concurrency client, and the driver commits each batch as it comes back.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pandas as pd

from adpilot.backends.llm.base import Completion, GenerationParams, LLMError, Message
from adpilot.data import columns as C
from adpilot.errors import InputError

T = TypeVar("T")
R = TypeVar("R")
_END = object()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    key TEXT PRIMARY KEY, text TEXT NOT NULL, prompt_tokens INTEGER, completion_tokens INTEGER,
    seconds REAL, model TEXT, run INTEGER NOT NULL, finished_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run INTEGER PRIMARY KEY AUTOINCREMENT, started_at REAL NOT NULL, briefs INTEGER NOT NULL,
    done_before INTEGER NOT NULL, pending INTEGER NOT NULL, finished_at REAL, generated INTEGER,
    failed INTEGER);
CREATE TABLE IF NOT EXISTS failures (
    key TEXT NOT NULL, run INTEGER NOT NULL, error TEXT NOT NULL, at REAL NOT NULL);
"""


class Ledger:
    """The durable progress record: a SQLite file with one ``messages`` row per finished key.

    Only the thread that opened it writes (the driver); each row is committed on its own.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(self.path)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=FULL")  # a committed row survives power loss
        self._con.executescript(_SCHEMA)
        self._con.commit()

    def done_keys(self) -> set[str]:
        return {r[0] for r in self._con.execute("SELECT key FROM messages")}

    def count(self) -> int:
        return self._con.execute("SELECT count(*) FROM messages").fetchone()[0]

    def start_run(self, briefs: int, done_before: int, pending: int) -> int:
        cur = self._con.execute("INSERT INTO runs (started_at, briefs, done_before, pending) "
                                "VALUES (?, ?, ?, ?)", (time.time(), briefs, done_before, pending))
        self._con.commit()
        return int(cur.lastrowid)

    def finish_run(self, run: int, generated: int, failed: int) -> None:
        self._con.execute("UPDATE runs SET finished_at = ?, generated = ?, failed = ? WHERE run = ?",
                          (time.time(), generated, failed, run))
        self._con.commit()

    def record(self, key: str, completion: Completion, run: int) -> None:
        """Store one finished message and commit (a second row for the key raises)."""
        self._con.execute(
            "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (key, completion.text, completion.usage.prompt_tokens,
             completion.usage.completion_tokens, completion.seconds, completion.model, run,
             time.time()))
        self._con.commit()

    def fail(self, key: str, run: int, error: str) -> None:
        self._con.execute("INSERT INTO failures VALUES (?, ?, ?, ?)",
                          (key, run, error[:500], time.time()))
        self._con.commit()

    def messages(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM messages ORDER BY finished_at, key", self._con)

    def runs(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM runs ORDER BY run", self._con)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class BatchResult:
    run: int
    briefs: int
    done_before: int
    generated: int
    failed: int
    seconds: float
    completion_tokens: int

    def summary(self) -> dict:
        return {**self.__dict__, "messages_per_s": round(self.generated / self.seconds, 3)
                if self.seconds else None}


def read_briefs(path: str | Path) -> pd.DataFrame:
    """Briefs from CSV, JSONL or Parquet: ``key`` and ``prompt`` (``system`` optional)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("briefs file not found", path=str(p))
    if p.suffix == ".parquet":
        frame = pd.read_parquet(p)
    elif p.suffix in (".jsonl", ".ndjson"):
        frame = pd.read_json(p, lines=True, dtype=False)
    else:
        frame = pd.read_csv(p, dtype=str, keep_default_na=False)
    return check_briefs(frame, str(p))


def check_briefs(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    missing = [c for c in ("key", "prompt") if c not in frame]
    if missing:
        raise InputError(f"briefs need the columns key and prompt; missing {missing}, found "
                         f"{list(frame.columns)}", path=source)
    frame = frame.assign(key=frame["key"].astype(str))
    dup = frame["key"][frame["key"].duplicated()]
    if len(dup):
        raise InputError(f"brief keys must be unique; repeated: {dup.head(5).tolist()}",
                         path=source)
    return frame.reset_index(drop=True)


def _messages(row: dict) -> list[Message]:
    msgs = [Message("system", str(row["system"]))] if row.get("system") else []
    return msgs + [Message("user", str(row["prompt"]))]


def generate_batch(briefs: pd.DataFrame, backend, ledger: Ledger, params: GenerationParams, *,
                   concurrency: int = 8, executor=None, stage_options: dict | None = None,
                   progress: Callable[[int, int], None] | None = None) -> BatchResult:
    """Generate a message for every brief whose key is not in ``ledger`` yet.

    ``backend`` is an LLM backend (``complete`` retries with backoff). With ``executor`` (not
    local) the prompts run as :class:`GenerationStage` on it; ``stage_options`` are that
    stage's server settings (``base_url``, ``model``, …).
    """
    briefs = check_briefs(briefs)
    started = time.perf_counter()
    done = ledger.done_keys()
    pending = briefs[~briefs["key"].isin(done)]
    run = ledger.start_run(len(briefs), len(briefs) - len(pending), len(pending))
    generated = failed = tokens = 0
    total = len(briefs)
    if progress:
        progress(len(briefs) - len(pending), total)
    try:
        if executor is not None and executor.name != "local":
            from adpilot.backends.executor import Stage

            stage = Stage("generate", GenerationStage,
                          {**(stage_options or {}), "max_tokens": params.max_tokens,
                           "temperature": params.temperature, "seed": params.seed,
                           "concurrency": concurrency}, batch_size=max(1, 4 * concurrency),
                          num_cpus=0.25)
            cols = [c for c in ("key", "prompt", "system") if c in pending]
            for out in executor.iter_batches(stage, pending[cols]):
                for row in out.to_dict("records"):
                    if row["error"]:
                        ledger.fail(row["key"], run, row["error"])
                        failed += 1
                        continue
                    ledger.record(row["key"], _completion(row), run)
                    generated += 1
                    tokens += int(row["completion_tokens"])
                if progress:
                    progress(total - len(pending) + generated + failed, total)
        else:
            for key, result in _threaded(backend, pending, params, concurrency):
                if isinstance(result, Exception):
                    ledger.fail(key, run, f"{type(result).__name__}: {result}")
                    failed += 1
                else:
                    ledger.record(key, result, run)
                    generated += 1
                    tokens += result.usage.completion_tokens
                if progress:
                    progress(total - len(pending) + generated + failed, total)
    finally:
        ledger.finish_run(run, generated, failed)
    return BatchResult(run, len(briefs), len(briefs) - len(pending), generated, failed,
                       time.perf_counter() - started, tokens)


def _threaded(backend, pending: pd.DataFrame, params: GenerationParams,
              concurrency: int) -> Iterator[tuple[str, Completion | Exception]]:
    """(key, completion or error) as requests finish; at most ``concurrency`` in flight, and
    only a small window of briefs submitted ahead (millions of briefs stay cheap)."""
    rows = iter(pending.to_dict("records"))
    for row, result in bounded_map(lambda row: backend.complete(_messages(row), params), rows,
                                   concurrency, name="adpilot-gen"):
        yield row["key"], result


def bounded_map(fn: Callable[[T], R], items: Iterator[T], workers: int, *,
                name: str = "adpilot") -> Iterator[tuple[T, R | LLMError]]:
    """``(item, fn(item) or its LLMError)`` as calls finish, at most ``workers`` in flight and
    only that many items read ahead. An LLMError fails that item alone; any other error stops
    the loop. On Ctrl-C or an error what is queued is dropped, in-flight calls are not awaited."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
    inflight: dict[Future, T] = {}

    def submit_next() -> bool:
        item = next(items, _END)
        if item is _END:
            return False
        inflight[pool.submit(fn, item)] = item
        return True

    try:
        for _ in range(workers):
            if not submit_next():
                break
        while inflight:
            finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            for fut in finished:
                item = inflight.pop(fut)
                exc = fut.exception()
                if exc is not None and not isinstance(exc, LLMError):
                    raise exc
                yield item, exc if exc is not None else fut.result()
                submit_next()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _completion(row: dict) -> Completion:
    from adpilot.backends.llm.base import Usage

    return Completion(row[C.TEXT], Usage(int(row["prompt_tokens"]), int(row["completion_tokens"])),
                      float(row["seconds"]), row["model"])


class GenerationStage:
    """Batch stage for an executor: one OpenAI-compatible client per worker, ``concurrency``
    requests at once. In: ``key``, ``prompt`` (``system``). Out: one row per key with the
    text and usage, or the error."""

    def __init__(self, base_url: str, model: str | None = None, *, max_tokens: int = 64,
                 temperature: float = 0.0, seed: int | None = None, concurrency: int = 4,
                 max_retries: int = 3, backoff: float = 0.5, timeout: float = 120.0) -> None:
        from adpilot.backends.llm import get_backend

        self.backend = get_backend("openai", base_url=base_url, model=model,
                                   concurrency=concurrency, max_retries=max_retries,
                                   backoff=backoff, timeout=timeout)
        self.params = GenerationParams(max_tokens=max_tokens, temperature=temperature, seed=seed)
        self.concurrency = concurrency

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        rows = []
        for key, res in _threaded(self.backend, batch, self.params, self.concurrency):
            if isinstance(res, Exception):
                rows.append({"key": key, "text": "", "prompt_tokens": 0, "completion_tokens": 0,
                             "seconds": 0.0, "model": "", "error": f"{type(res).__name__}: {res}"})
            else:
                rows.append({"key": key, "text": res.text, "prompt_tokens": res.usage.prompt_tokens,
                             "completion_tokens": res.usage.completion_tokens,
                             "seconds": res.seconds, "model": res.model, "error": ""})
        return pd.DataFrame(rows, columns=["key", C.TEXT, "prompt_tokens", "completion_tokens",
                                           "seconds", "model", "error"])
