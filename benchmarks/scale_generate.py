"""Batch generation of 2,000 messages against a local OpenAI-compatible server, killed halfway
(SIGKILL) and resumed: every message stored exactly once.

Server: ``python -m llama_cpp.server`` with the Gemma 3 270M Q4_K_M GGUF (a small base model:
the text is weak, the point is the mechanics), ``--chat_format gemma``, on this machine's CPUs.
Briefs: one per real review title from ../shared/data/reviews/womens_clothing_ecommerce_reviews
.csv (the first 2,000 rows with a title), "Write a short ad line about: <title>".
Client: ``adpilot generate-batch`` with --concurrency 4 and --max-tokens 4, in a subprocess that is
killed with SIGKILL once half the messages are in the ledger; then the same command again.

The two phases are two commands (each stays under 10 minutes on 2 shared cores):
  python benchmarks/scale_generate.py --phase first   # start, kill at --kill-at
  python benchmarks/scale_generate.py --phase resume  # rerun, verify, write the results
Writes benchmarks/results/scale_generate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DATA = Path(os.environ.get("ADPILOT_DATA_DIR", ROOT.parent / "shared" / "data"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    from adpilot.backends.llm.models import model_path
    from adpilot.config import get_settings

    gguf = model_path("gemma3-270m-q4_k_m", cache_dir=get_settings().models_dir)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024",
                             "--model_alias", "gemma", "--chat_format", "gemma"],
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(240):
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.25)
    proc.kill()
    raise SystemExit(f"server did not start: {log.read_text()[-1000:]}")


def count(ledger: Path) -> int:
    if not ledger.exists():
        return 0
    con = sqlite3.connect(ledger, timeout=5)
    try:
        return con.execute("SELECT count(*) FROM messages").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def command(briefs: Path, ledger: Path, url: str, args) -> list[str]:
    return [sys.executable, "-m", "adpilot", "generate-batch", "--briefs", str(briefs),
            "--ledger", str(ledger), "--base-url", url, "--model", "gemma", "--concurrency",
            str(args.concurrency), "--max-tokens", str(args.max_tokens), "--json"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase", choices=["first", "resume"], required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--kill-at", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=4)
    ap.add_argument("--work", type=Path, default=Path("/tmp/adpilot-scale-generate"))
    args = ap.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    briefs, ledger, state = work / "briefs.csv", work / "ledger.sqlite", work / "state.json"
    if args.phase == "first":
        for p in (ledger, Path(str(ledger) + "-wal"), Path(str(ledger) + "-shm"), state):
            p.unlink(missing_ok=True)
        titles = pd.read_csv(DATA / "reviews" / "womens_clothing_ecommerce_reviews.csv",
                             usecols=["Title"])["Title"].dropna().head(args.n).tolist()
        pd.DataFrame({"key": [f"m{i:05d}" for i in range(len(titles))],
                      "prompt": [f"Write a short ad line about: {t}" for t in titles]}).to_csv(
            briefs, index=False)
    server, url = start_server(work / f"server-{args.phase}.log")
    try:
        t = time.perf_counter()
        if args.phase == "first":
            proc = subprocess.Popen(command(briefs, ledger, url, args),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while count(ledger) < args.kill_at and proc.poll() is None:
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            secs = time.perf_counter() - t
            stored = count(ledger)
            state.write_text(json.dumps({"killed_after_s": round(secs, 1),
                                         "stored_at_kill": stored,
                                         "exit_signal": -proc.returncode}))
            print(f"killed with SIGKILL after {secs:.1f} s; {stored} messages stored")
            return
        before = json.loads(state.read_text())
        out = subprocess.run(command(briefs, ledger, url, args), capture_output=True, text=True,
                             check=True)
        resume_s = time.perf_counter() - t
        summary = json.loads(out.stdout)
    finally:
        server.terminate()
        server.wait(timeout=30)
    con = sqlite3.connect(ledger)
    msgs = pd.read_sql_query("SELECT key, run, completion_tokens, seconds FROM messages", con)
    runs = pd.read_sql_query("SELECT * FROM runs ORDER BY run", con)
    fails = con.execute("SELECT count(*) FROM failures").fetchone()[0]
    con.close()
    keys = set(pd.read_csv(briefs)["key"])
    per_run = msgs.groupby("run").size().to_dict()
    checks = {
        "every_brief_stored": set(msgs["key"]) == keys,
        "each_key_once": bool(msgs["key"].is_unique) and len(msgs) == len(keys),
        "first_run_rows_kept": per_run.get(1) == before["stored_at_kill"],
        "resume_sent_only_the_rest": int(runs["pending"].iloc[-1]) == len(keys)
        - before["stored_at_kill"],
    }
    result = {
        "messages": len(keys), "stored": len(msgs), "distinct_keys": int(msgs["key"].nunique()),
        "server": "llama-cpp-python 0.3.36 server, Gemma 3 270M Q4_K_M, --chat_format gemma",
        "concurrency": args.concurrency, "max_tokens": args.max_tokens,
        "first_run": {**before, "messages_per_s": round(before["stored_at_kill"]
                                                        / before["killed_after_s"], 2)},
        "resume_run": {"seconds": round(resume_s, 1), "done_before": summary["done_before"],
                       "generated": summary["generated"], "failed": summary["failed"],
                       "messages_per_s": summary["messages_per_s"]},
        "rows_per_run": {int(k): int(v) for k, v in per_run.items()},
        "failures_logged": fails,
        "completion_tokens_total": int(msgs["completion_tokens"].sum()),
        "checks": checks, "exactly_once": all(checks.values()),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scale_generate.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    assert result["exactly_once"], checks


if __name__ == "__main__":
    main()
