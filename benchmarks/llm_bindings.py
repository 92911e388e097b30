"""llama.cpp from Python: xllamacpp (prebuilt wheels) vs llama-cpp-python (compiled at install).

Side by side, on what adpilot uses:

1. install: ``pip install --no-cache-dir xllamacpp==<installed version>`` into a fresh venv,
   timed; llama-cpp-python has no wheel on PyPI for this platform (checked with ``pip download
   --only-binary``), so it compiles: ``--compile`` times that build (15-25 min on 2 cores);
   without it the figure is not measured and is said to be so. Installed sizes from the venv.
2. decode: the generator GGUF (Qwen2.5-Coder-1.5B-Instruct Q4_K_M), batch 1, the same prompt,
   ``--threads`` for both, greedy, EOS suppressed so both write exactly ``--tokens`` tokens;
   tokens/s from the first streamed token to the last (prompt excluded). Each binding runs in
   its own process with the model loaded once; repetitions are interleaved (the order swapped
   every round) and the per-round ratio is reported beside the medians, since the machine is
   shared and its speed drifts.
3. structured: both adpilot backends (``llamacpp`` on xllamacpp, ``llama-cpp-python``) write
   copy for the same products and channels with the generator's real JSON schema, greedy: share
   of first replies that parse and validate, whether they hold only the schema's keys, tokens.
4. lora: a random GGUF LoRA adapter on the small Gemma 3 270M: loads, changes the greedy reply,
   and scale 0 gives the base reply back, for both.
5. server: each binding's OpenAI-compatible server with the Gemma model: seconds until
   ``/v1/models`` answers, then ``--requests`` concurrent chat requests (``--parallel`` slots on
   llama.cpp's server; llama-cpp-python's server takes them one at a time).

Usage: nice -n 10 python benchmarks/llm_bindings.py [--reps 5] [--tokens 64] [--threads 1]
       [--compile] [--skip-install] [--skip-server]
Writes benchmarks/results/llm_bindings.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
PROMPT = "Write a long, friendly product description of a linen shirt for summer:\n"
BINDINGS = ("xllamacpp", "llama-cpp-python")
PRODUCTS = [  # from src/adpilot/sample/products.csv
    ("en", "Linen Wrap Midi Dress", "100% European linen in a relaxed fit with an adjustable tie "
     "waist and side pockets. Midi length; machine wash cold."),
    ("zh", "真丝衬衫", "19姆米重磅桑蚕丝，垂感好，版型略宽松。建议冷水手洗或干洗，避免暴晒。"),
    ("en", "Merino Crew-Neck Sweater", "Extra-fine merino wool in a regular fit with ribbed cuffs "
     "and hem. Hand wash or use a wool cycle."),
    ("zh", "羊毛混纺针织开衫", "50%羊毛混纺，V领单排扣，常规版型。洗后请平铺晾干。"),
]
CHANNELS = ("sms", "search_ad")


def stats(xs: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(xs), 3), "min": round(min(xs), 3),
            "max": round(max(xs), 3)}


# --- worker: one binding, one model, commands on stdin ------------------------------------------

def backend_for(binding: str, model: str, threads: int, **kw):
    if binding == "xllamacpp":
        from adpilot.backends.llm.llamacpp import LlamaCppBackend
        return LlamaCppBackend(model, n_ctx=2048, n_threads=threads, **kw)
    from adpilot.backends.llm.llamacpp_python import LlamaCppPythonBackend
    return LlamaCppPythonBackend(model, n_ctx=2048, n_threads=threads, **kw)


def decode(binding: str, engine, n: int) -> dict:
    """Stream ``n`` greedy tokens with EOS suppressed; time first token to last. CPU seconds of
    the whole process per token too: on a shared machine they move less than the wall clock."""
    stamps: list[float] = []  # one per token chunk; the closing chunk (finish_reason) is not one
    cpu0, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()

    def on_chunk(chunk) -> None:
        data = json.loads(chunk) if isinstance(chunk, str) else chunk
        if any(c.get("finish_reason") is None for c in data.get("choices", [])):
            stamps.append(time.perf_counter())
    if binding == "xllamacpp":
        engine.handle_completions({"prompt": PROMPT, "max_tokens": n, "temperature": 0.0,
                                   "seed": 0, "ignore_eos": True, "stream": True}, on_chunk)
    else:
        for chunk in engine.create_completion(PROMPT, max_tokens=n, temperature=0.0, stream=True,
                                              logit_bias={engine.token_eos(): -1e9}):
            on_chunk(chunk)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return {"tokens": len(stamps), "prompt_s": stamps[0] - started,
            "decode_tps": (len(stamps) - 1) / (stamps[-1] - stamps[0]),
            "cpu_ms_per_token": 1000 * cpu / len(stamps)}


def structured_case(backend, lang: str, title: str, desc: str, channel: str) -> dict:
    from adpilot.backends.llm import GenerationParams, Message, extract_json
    from adpilot.generation import load_brand
    from adpilot.generation.channels import channel_spec
    from adpilot.generation.generator import output_schema

    spec = channel_spec(channel, lang)
    schema = output_schema(spec, load_brand())
    ask = (f"Write {channel} marketing copy in {'English' if lang == 'en' else 'Chinese'} for: "
           f"{title}. {desc}\nReply with one JSON object with the keys {', '.join(spec.fields)}.")
    params = GenerationParams(max_tokens=320, temperature=0.0, seed=0, json_schema=schema)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    out = backend.complete([Message("system", "You write marketing copy."), Message("user", ask)],
                           params)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    row = {"channel": channel, "lang": lang, "prompt_tokens": out.usage.prompt_tokens,
           "tokens": out.usage.completion_tokens, "seconds": round(out.seconds, 2),
           "cpu_seconds": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 2),
           "text": out.text}
    try:
        obj = extract_json(out.text)
        spec.schema().model_validate(obj)
        row.update(valid=True, only_schema_keys=set(obj) == set(spec.fields))
    except ValueError as exc:  # JSON or validation error
        row.update(valid=False, only_schema_keys=False, error=str(exc)[:200])
    return row


def lora_check(binding: str, model: str, lora: str, threads: int) -> dict:
    from adpilot.backends.llm import GenerationParams, Message

    msgs, params = [Message("user", "Name a summer fabric.")], GenerationParams(max_tokens=8,
                                                                               temperature=0.0)
    texts, load = {}, {}
    for name, kw in {"base": {}, "lora": {"lora_path": lora},
                     "lora_scale_0": {"lora_path": lora, "lora_scale": 0.0}}.items():
        b = backend_for(binding, model, threads, **({"chat_template": "gemma"} if binding ==
                                                       "xllamacpp" else {}), **kw)
        t = time.perf_counter()
        b._load()
        load[name] = round(time.perf_counter() - t, 2)
        texts[name] = b.complete(msgs, params).text
        b.close()
    return {"load_seconds": load, "changes_reply": texts["lora"] != texts["base"],
            "scale_0_is_base": texts["lora_scale_0"] == texts["base"], "texts": texts}


def worker(binding: str, model: str, threads: int) -> None:
    backend = backend_for(binding, model, threads)
    started = time.perf_counter()
    engine = backend._load()
    load_s = time.perf_counter() - started
    decode(binding, engine, 8)  # warm-up: weights paged in, threads spun up
    print(json.dumps({"load_seconds": round(load_s, 2)}), flush=True)
    cases = [(lang, title, desc, ch) for lang, title, desc in PRODUCTS for ch in CHANNELS]
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "decode":
            out = decode(binding, engine, cmd["tokens"])
        elif cmd["op"] == "structured":
            out = structured_case(backend, *cases[cmd["case"]])
        elif cmd["op"] == "lora":
            out = lora_check(binding, cmd["model"], cmd["lora"], threads)
        else:
            break
        print(json.dumps(out, ensure_ascii=False), flush=True)
    backend.close()


class Worker:
    def __init__(self, binding: str, model: Path, threads: int) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", binding, "--model",
                                      str(model), "--threads", str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.load_seconds = self.ask(None)["load_seconds"]

    def ask(self, cmd: dict | None) -> dict:
        if cmd is not None:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited with {self.proc.wait()}")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


# --- install, server ----------------------------------------------------------------------------

def install_figures(compile_lcp: bool) -> dict:
    out: dict = {}
    for dist in BINDINGS:
        try:
            version = metadata.version(dist)
            files = metadata.files(dist) or []
            size = sum((f.size or 0) for f in files)
            out[dist] = {"version": version, "installed_MB": round(size / 2**20, 1)}
        except metadata.PackageNotFoundError:
            out[dist] = {"version": None}
    with tempfile.TemporaryDirectory() as tmp:
        probe = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp,
                                "--only-binary=:all:",
                                f"llama-cpp-python=={out['llama-cpp-python'].get('version') or '0.3.36'}"],
                               capture_output=True, text=True)
        out["llama-cpp-python"]["prebuilt_wheel_on_pypi"] = probe.returncode == 0
        for dist, extra in (("xllamacpp", ""), ("llama-cpp-python", "compile")):
            if dist == "llama-cpp-python" and not compile_lcp:
                out[dist]["install_seconds"] = None
                out[dist]["install_note"] = ("not measured in this run (--compile times it); "
                                             "15-25 min on 2 cores by earlier builds here")
                continue
            venv = Path(tmp) / f"venv-{dist}"
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            env = dict(os.environ, CMAKE_ARGS="-DGGML_NATIVE=OFF") if extra else None
            version = out[dist].get("version") or ("0.3.36" if extra else "")
            t = time.perf_counter()
            r = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                                "--no-cache-dir", f"{dist}=={version}" if version else dist],
                               capture_output=True, text=True, env=env)
            out[dist]["install_seconds"] = round(time.perf_counter() - t, 1)
            out[dist]["install_ok"] = r.returncode == 0
    return out


def concurrent_chat(url: str, model: str, n: int, tokens: int) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    def one(i: int) -> int:
        r = httpx.post(f"{url}/chat/completions", timeout=600, json={
            "model": model, "max_tokens": tokens, "temperature": 0.0, "seed": i,
            "messages": [{"role": "user", "content": f"Write an SMS about linen shirts, number {i}."}]})
        r.raise_for_status()
        return r.json()["usage"]["completion_tokens"]

    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n) as pool:
        done = list(pool.map(one, range(n)))
    wall = time.perf_counter() - t
    return {"requests": n, "completion_tokens": sum(done), "seconds": round(wall, 2),
            "tokens_per_s": round(sum(done) / wall, 2)}


def wait_ready(url: str, deadline_s: float = 300) -> float:
    import httpx

    t = time.perf_counter()
    while time.perf_counter() - t < deadline_s:
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return time.perf_counter() - t
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready in {deadline_s} s")


def server_figures(gguf: Path, threads: int, parallel: int, n: int, tokens: int) -> dict:
    import socket

    from adpilot.backends.llm.local_server import start_server

    out = {}
    t = time.perf_counter()
    with start_server(gguf, n_ctx=1024, parallel=parallel, alias="m", chat_template="gemma",
                      n_threads=threads) as srv:
        ready = time.perf_counter() - t + wait_ready(srv.url)
        out["xllamacpp"] = {"module": "adpilot.backends.llm.local_server (in-process)",
                            "ready_seconds": round(ready, 2), "parallel": parallel,
                            **concurrent_chat(srv.url, "m", n, tokens)}
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        out["llama-cpp-python"] = {"skipped": f"llama_cpp.server not importable: {exc}"}
        return out
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024",
                             "--n_threads", str(threads), "--model_alias", "m",
                             "--chat_format", "gemma"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        ready = wait_ready(url)
        out["llama-cpp-python"] = {"module": "python -m llama_cpp.server (subprocess)",
                                   "ready_seconds": round(ready, 2), "parallel": 1,
                                   **concurrent_chat(url, "m", n, tokens)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out


def random_lora(base: Path, out: Path, rank: int = 4) -> Path:
    """Random A and B on every attention query projection: the test suite's adapter writer, so
    the benchmark measures the adapter the tests check."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_llm_backends import random_lora as write_random_lora

    return write_random_lora(base, out, rank=rank)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None, help="default: one per physical core")
    ap.add_argument("--compile", action="store_true", help="also time llama-cpp-python's build")
    ap.add_argument("--skip-install", action="store_true")
    ap.add_argument("--skip-server", action="store_true")
    ap.add_argument("--products", type=int, default=2, help="products for the structured part "
                    "(of 4, English and Chinese in turn, each in two channels)")
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--requests", type=int, default=4)
    ap.add_argument("--worker", choices=BINDINGS)
    ap.add_argument("--model")
    args = ap.parse_args()

    from adpilot.backends.llm.llamacpp import default_threads
    threads = args.threads or default_threads()
    if args.worker:
        return worker(args.worker, args.model, threads)

    from adpilot.backends.llm.models import DEFAULT_MODEL, model_path
    from adpilot.config import get_settings
    models = get_settings().models_dir
    qwen = model_path(DEFAULT_MODEL, cache_dir=models)
    gemma = model_path("gemma3-270m-q4_k_m", cache_dir=models)
    result: dict = {"machine": {"cpus": os.cpu_count(), "threads": threads,
                                "python": platform.python_version(),
                                "note": "2 cores shared with other engineers' jobs: compare the "
                                        "per-round ratios, not absolute speeds"},
                    "model": qwen.name, "prompt": PROMPT, "new_tokens": args.tokens}
    if not args.skip_install:
        result["install"] = install_figures(args.compile)
        print(json.dumps(result["install"], indent=2), flush=True)

    workers = {b: Worker(b, qwen, threads) for b in BINDINGS}
    rounds = []
    for rep in range(args.reps):
        order = BINDINGS if rep % 2 == 0 else BINDINGS[::-1]
        rounds.append({b: workers[b].ask({"op": "decode", "tokens": args.tokens}) for b in order})
        print(json.dumps(rounds[-1]), flush=True)
    rates = {b: [r[b]["decode_tps"] for r in rounds] for b in BINDINGS}
    result["decode"] = {
        **{b: {"tokens_per_s": stats(rates[b]),
               "prompt_seconds": stats([r[b]["prompt_s"] for r in rounds]),
               "cpu_ms_per_token": stats([r[b]["cpu_ms_per_token"] for r in rounds]),
               "tokens_written": sorted({r[b]["tokens"] for r in rounds})} for b in BINDINGS},
        "ratio_xllamacpp_over_llama_cpp_python": stats([x / y for x, y in zip(*rates.values(),
                                                                               strict=True)]),
        "reps": args.reps}
    result["load_seconds"] = {b: w.load_seconds for b, w in workers.items()}
    structured: dict[str, list] = {b: [] for b in BINDINGS}
    for case in range(args.products * len(CHANNELS)):  # interleaved, the order swapped each case
        for b in BINDINGS if case % 2 == 0 else BINDINGS[::-1]:
            structured[b].append(workers[b].ask({"op": "structured", "case": case}))
    result["structured"] = {b: {"cases": len(rows), "valid": sum(r["valid"] for r in rows),
                                "only_schema_keys": sum(r["only_schema_keys"] for r in rows),
                                "completion_tokens": sum(r["tokens"] for r in rows),
                                "seconds": round(sum(r["seconds"] for r in rows), 1),
                                "cpu_seconds": round(sum(r["cpu_seconds"] for r in rows), 1),
                                "rows": rows} for b, rows in structured.items()}
    with tempfile.TemporaryDirectory() as tmp:
        lora = random_lora(gemma, Path(tmp) / "random-lora.gguf")
        result["lora"] = {b: workers[b].ask({"op": "lora", "model": str(gemma), "lora": str(lora)})
                          for b in BINDINGS}
    for w in workers.values():
        w.close()
    if not args.skip_server:
        result["server"] = server_figures(gemma, threads, args.parallel, args.requests, 32)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "llm_bindings.json").write_text(json.dumps(result, indent=2, ensure_ascii=False)
                                               + "\n")
    summary = {k: result[k] for k in ("decode", "lora", "server") if k in result}
    summary["structured"] = {b: {k: v for k, v in s.items() if k != "rows"}
                             for b, s in result["structured"].items()}
    print(json.dumps(summary, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
