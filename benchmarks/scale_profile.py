"""Scale-out benchmark: the profiling stage on 1,000,000 review rows with the local and the Ray
executor, DuckDB profile building memory from 100k to 1M rows, and model-sentiment throughput.

Data: real review rows from ../shared/data (women's clothing, Amazon fashion + beauty,
online_shopping_10_cats_zh) resampled with replacement (seed 0) to N rows over N/5 users, with
real ages resampled (``benchmarks/profile_build.py: make_rows``). Each configuration runs in a
fresh process; peak memory is the sampled peak RSS of that process and all its children (the Ray
raylet, GCS and workers included), every 0.2 s, as PSS (proportional set size: memory
shared between processes, such as Ray's object store, is counted once, not once per process).

Modes (each writes benchmarks/results/scale_<mode>[_<executor>].json):
  --mode pipeline --executor local|ray --rows 1000000
      reviews.parquet → sentiment (rating polarity) → aspects → LSA embeddings (fitted on a
      seeded sample of --fit-sample texts) as Parquet parts → profiles in DuckDB → k-means
      segments (k=6) → segment statistics in DuckDB.
  --mode memory --sizes 100000,300000,1000000
      DuckDB profile building (--memory-limit, default 512MB) over polarity + aspect parts vs
      pandas build_profiles on the same rows: peak RSS above the process's baseline.
  --mode sentiment --rows 2000
      the fine-tuned polarity models (MiniLM + TF-IDF, EN + ZH, from the model cache) as a batch
      stage: reviews/s on the local executor and on Ray (2 actors, 1 torch thread each).

Usage: python benchmarks/scale_profile.py --mode pipeline --executor local
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))


class PeakRSS:
    """Samples the PSS of this process and all its descendants; ``peak_mb`` is the maximum."""

    def __init__(self, every: float = 0.2) -> None:
        import psutil

        self._proc = psutil.Process()
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        import psutil

        total = 0
        for p in [self._proc, *self._proc.children(recursive=True)]:
            try:  # PSS: shared pages (Ray's object store) are split, not counted per process
                total += p.memory_full_info().pss
            except (psutil.Error, AttributeError):
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            time.sleep(self.every)

    def __enter__(self) -> PeakRSS:
        self.peak = self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.sample())

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)


def write_inputs(rows: int, folder: Path) -> tuple[Path, Path]:
    from profile_build import make_rows

    reviews, customers = make_rows(rows)
    r, c = folder / "reviews.parquet", folder / "customers.parquet"
    reviews.to_parquet(r, index=False, row_group_size=100_000)
    customers.to_parquet(c, index=False)
    return r, c


def make_executor(name: str):
    from adpilot.backends.executor import get_executor

    if name == "ray":
        return get_executor("ray", num_cpus=os.cpu_count(), object_store_memory=1 << 30,
                            show_progress=False)
    return get_executor("local")


def pipeline(args) -> dict:
    from adpilot.profiling.scaled import profile_parquet

    with tempfile.TemporaryDirectory(prefix="adpilot-scale-") as tmp:
        t = time.perf_counter()
        reviews, customers = write_inputs(args.rows, Path(tmp))
        make_s = time.perf_counter() - t
        import gc

        gc.collect()
        with PeakRSS() as mem:
            base = mem.sample()
            t = time.perf_counter()
            ex = make_executor(args.executor)
            startup = time.perf_counter() - t
            try:
                out = profile_parquet(ex, reviews, Path(tmp) / "out", customers=customers,
                                      sentiment="rating", embedder="lsa", k=6,
                                      batch_size=args.batch_size, fit_sample=args.fit_sample)
            finally:
                ex.close()
            total = time.perf_counter() - t
        stats = pd.read_parquet(out["segment_stats"])
        profiles_rows = pd.read_parquet(out["profiles"], columns=["user_id"]).shape[0]
    return {"mode": "pipeline", "executor": args.executor, "rows": args.rows,
            "users": out["users"], "profiles_rows": profiles_rows, "k": out["k"],
            "batch_size": args.batch_size, "fit_sample": args.fit_sample,
            "cpus": os.cpu_count(), "seconds_total": round(total, 1),
            "seconds_executor_startup": round(startup, 1), "stage_seconds": out["timings"],
            "rows_per_s": round(args.rows / total), "peak_pss_mb": mem.peak_mb,
            "baseline_pss_mb": round(base / 2**20, 1), "input_build_seconds": round(make_s, 1),
            "segment_sizes": stats.set_index("segment")["size"].astype(int).to_dict(),
            "sentiment": out["sentiment"], "embedder": out["embedder"]}


def memory_child(rows: int, memory_limit: str = "512MB") -> dict:
    """One size: DuckDB profile building vs pandas build_profiles, peak RSS above baseline."""
    import gc

    from adpilot.backends.executor import LocalExecutor, Stage
    from adpilot.backends.executor.stages import AspectStage
    from adpilot.profiling import duck
    from adpilot.profiling.profiles import build_profiles

    with tempfile.TemporaryDirectory(prefix="adpilot-mem-") as tmp:
        folder = Path(tmp)
        from profile_build import make_rows

        reviews, customers = make_rows(rows)
        reviews["polarity"] = (reviews["rating"] - 3) / 2
        src = folder / "reviews.parquet"
        reviews.to_parquet(src, index=False, row_group_size=100_000)
        customers.to_parquet(folder / "customers.parquet", index=False)
        aspects_dir = LocalExecutor().to_parquet(Stage("aspects", AspectStage, batch_size=20_000),
                                                 src, folder / "aspects")
        del reviews, customers
        gc.collect()
        con = duck.connect(memory_limit=memory_limit, temp_dir=folder / "spill")
        with PeakRSS(0.05) as mem:
            base = mem.sample()
            t = time.perf_counter()
            duck.build_profiles_duckdb(con, folder / "profiles.parquet", reviews=src,
                                       aspects=aspects_dir,
                                       customers=folder / "customers.parquet")
            duck_s = time.perf_counter() - t
        con.close()
        n_profiles = pd.read_parquet(folder / "profiles.parquet", columns=["user_id"]).shape[0]
        gc.collect()
        # pandas in memory, same inputs (read first: the read is not counted as building)
        reviews = pd.read_parquet(src)
        customers = pd.read_parquet(folder / "customers.parquet")
        from adpilot.backends.executor import read_parquet_parts

        aspects = read_parquet_parts(aspects_dir)
        gc.collect()
        with PeakRSS(0.05) as mem2:
            base2 = mem2.sample()
            t = time.perf_counter()
            prof = build_profiles(reviews, customers=customers, sentiment=reviews["polarity"],
                                  aspects=aspects)
            pandas_s = time.perf_counter() - t
        inputs_mb = round((reviews.memory_usage(deep=True).sum()
                           + aspects.memory_usage(deep=True).sum()) / 2**20, 1)
        assert len(prof.table) == n_profiles, (len(prof.table), n_profiles)
    return {"rows": rows, "users": n_profiles,
            "duckdb": {"seconds": round(duck_s, 2),
                       "peak_pss_above_baseline_mb": round((mem.peak - base) / 2**20, 1),
                       "baseline_pss_mb": round(base / 2**20, 1)},
            "pandas": {"seconds": round(pandas_s, 2),
                       "peak_pss_above_baseline_mb": round((mem2.peak - base2) / 2**20, 1),
                       "inputs_in_memory_mb": inputs_mb}}


def sentiment_child(args) -> dict:
    from profile_build import make_rows

    from adpilot.backends.executor import Stage
    from adpilot.backends.executor.stages import SentimentStage
    from adpilot.profiling.sentiment import default_model_dir

    models_dir = str(default_model_dir("polarity", "en").parent)
    if not (Path(models_dir) / "sentiment-polarity-zh" / "meta.json").is_file():
        raise SystemExit(f"train the default models first (adpilot sentiment train-defaults); "
                         f"none in {models_dir}")
    reviews, _ = make_rows(args.rows)
    stage = Stage("sentiment", SentimentStage, {"mode": "model", "models_dir": models_dir,
                                                "num_threads": 1}, batch_size=128, num_cpus=0.5)
    with PeakRSS() as mem:
        t = time.perf_counter()
        ex = make_executor(args.executor)
        startup = time.perf_counter() - t
        t = time.perf_counter()
        out = ex.map_batches(stage, reviews[["id", "text", "language", "rating"]])
        secs = time.perf_counter() - t
        ex.close()
    assert len(out) == args.rows
    return {"mode": "sentiment", "executor": args.executor, "rows": args.rows,
            "languages": reviews["language"].value_counts().to_dict(),
            "seconds": round(secs, 1), "seconds_executor_startup": round(startup, 1),
            "reviews_per_s": round(args.rows / secs, 1), "peak_pss_mb": mem.peak_mb,
            "model": "fine-tuned polarity EN (MiniLM + TF-IDF) and ZH (char TF-IDF), 1 torch "
                     "thread per worker"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["pipeline", "memory", "sentiment"], required=True)
    ap.add_argument("--executor", choices=["local", "ray"], default="local")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--sizes", default="100000,300000,1000000")
    ap.add_argument("--batch-size", type=int, default=20_000)
    ap.add_argument("--fit-sample", type=int, default=20_000)
    ap.add_argument("--memory-limit", default="512MB", help="DuckDB memory_limit (memory mode)")
    ap.add_argument("--child-rows", type=int)
    args = ap.parse_args()
    if args.child_rows:
        print(json.dumps(memory_child(args.child_rows, args.memory_limit)))
        return
    RESULTS.mkdir(exist_ok=True)
    if args.mode == "memory":
        runs = []
        for n in [int(s) for s in args.sizes.split(",")]:
            out = subprocess.run([sys.executable, __file__, "--mode", "memory", "--child-rows",
                                  str(n), "--memory-limit", args.memory_limit],
                                 capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[-1]), flush=True)
        result = {"mode": "memory", "data": "real reviews resampled with replacement, seed 0, "
                  "N/5 users (benchmarks/profile_build.py make_rows)",
                  "duckdb_memory_limit": args.memory_limit, "runs": runs}
        name = ("scale_memory.json" if args.memory_limit == "512MB"
                else f"scale_memory_{args.memory_limit}.json")
    elif args.mode == "sentiment":
        result = sentiment_child(args)
        name = f"scale_sentiment_{args.executor}.json"
    else:
        result = pipeline(args)
        name = f"scale_pipeline_{args.executor}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
