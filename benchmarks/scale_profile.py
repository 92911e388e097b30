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
      profile building from Parquet inputs (reviews with polarity, customers, aspect and 64-dim
      embedding part files, written first by a separate process and reused from --data-dir):
      ``duck.build_profiles_parquet`` (--memory-limit, default 256MB; --threads, default 2) and
      pandas ``build_profiles``, each in a fresh process; peak = that process's ru_maxrss;
      spill_peak_mb = peak size of DuckDB's temp folder (partition files + spill).
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
    import pandas as pd

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


def prepare_pool(folder: Path) -> None:
    """Per-review outputs computed once on the real review pool (aspects with rating polarity,
    64-dim LSA embeddings fitted on a seeded 20,000-text sample); each size resamples them."""
    import numpy as np
    from profile_build import review_pool

    from adpilot.profiling.embeddings import LsaEmbedder
    from adpilot.profiling.steps import AspectStage

    if (folder / "pool_embeddings.npy").is_file():
        return
    folder.mkdir(parents=True, exist_ok=True)
    pool = review_pool()
    pool = pool.assign(id=[str(i) for i in range(len(pool))],
                       polarity=(pool["rating"] - 3) / 2)
    aspects = AspectStage()(pool[["id", "text", "language", "polarity"]])
    aspects["pool_index"] = aspects.pop("review_id").astype(int)
    aspects.to_parquet(folder / "pool_aspects.parquet", index=False)
    texts = pool["text"].fillna("").astype(str)
    pick = np.sort(np.random.default_rng(0).choice(len(texts), 20_000, replace=False))
    lsa = LsaEmbedder(dim=64).fit(texts.iloc[pick].tolist())
    np.save(folder / "pool_embeddings.npy", lsa.encode(texts.tolist()).astype(np.float32))


ROW_GROUP = 20_000  # rows per Parquet row group in the stage part files (the executors write
# one part per batch: 20,000 rows is the batch size of the pipeline mode)


def prepare_inputs(rows: int, root: Path) -> Path:
    """The Parquet inputs for one size (reviews with polarity, customers, aspect and
    embedding part files), written once under ``root/<rows>``; runs in its own process."""
    import numpy as np
    import pandas as pd
    from profile_build import make_rows

    folder = root / str(rows)
    if (folder / "done").is_file():
        return folder
    prepare_pool(root)
    folder.mkdir(parents=True, exist_ok=True)
    reviews, customers = make_rows(rows, pool_index=True)
    reviews["polarity"] = (reviews["rating"] - 3) / 2
    pick = reviews.pop("pool_index").to_numpy()
    reviews.to_parquet(folder / "reviews.parquet", index=False, row_group_size=100_000)
    customers.to_parquet(folder / "customers.parquet", index=False, row_group_size=ROW_GROUP)
    pool_aspects = pd.read_parquet(root / "pool_aspects.parquet")
    aspects = (pd.DataFrame({"review_id": reviews["id"], "pool_index": pick})
               .merge(pool_aspects, on="pool_index", sort=False).drop(columns="pool_index"))
    emb = np.load(root / "pool_embeddings.npy")[pick]
    (folder / "aspects").mkdir(exist_ok=True)
    (folder / "embeddings").mkdir(exist_ok=True)
    step = 100_000
    for i, lo in enumerate(range(0, len(aspects), step)):
        aspects.iloc[lo:lo + step].to_parquet(folder / "aspects" / f"part-{i:06d}.parquet",
                                              index=False, row_group_size=ROW_GROUP)
    for i, lo in enumerate(range(0, rows, step)):
        part = pd.DataFrame(emb[lo:lo + step], columns=[f"e{j}" for j in range(emb.shape[1])])
        part.insert(0, "id", reviews["id"].iloc[lo:lo + step].to_numpy())
        part.to_parquet(folder / "embeddings" / f"part-{i:06d}.parquet", index=False,
                        row_group_size=ROW_GROUP)
    (folder / "done").write_text(json.dumps({"rows": rows, "aspect_rows": len(aspects),
                                             "embedding_dim": int(emb.shape[1])}))
    return folder


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


class DirPeak:
    """Samples the size of a folder (DuckDB's spill files) every 20 ms; ``peak_mb``."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.peak = folder, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, sum(f.stat().st_size for f in self.folder.rglob("*")
                                               if f.is_file()))
            time.sleep(0.02)

    def __enter__(self) -> DirPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)


def measure_duckdb(folder: Path, memory_limit: str, threads: int) -> dict:
    """In a fresh process: profiles from the Parquet inputs to Parquet, nothing else."""
    from adpilot.profiling import duck

    meta = json.loads((folder / "done").read_text())
    import_rss = _rss_mb()
    with tempfile.TemporaryDirectory(prefix="adpilot-mem-") as tmp:
        spill = Path(tmp) / "spill"
        spill.mkdir()
        out = Path(tmp) / "profiles.parquet"
        with DirPeak(spill) as disk:
            t = time.perf_counter()
            duck.build_profiles_parquet(out, reviews=folder / "reviews.parquet",
                                        aspects=folder / "aspects",
                                        embeddings=folder / "embeddings",
                                        embedding_dim=meta["embedding_dim"],
                                        customers=folder / "customers.parquet",
                                        memory_limit=memory_limit, threads=threads,
                                        temp_dir=spill)
            secs = time.perf_counter() - t
        import pyarrow.parquet as pq

        md = pq.read_metadata(out)
        n_profiles, n_cols, out_mb = md.num_rows, md.num_columns, out.stat().st_size / 2**20
    return {"seconds": round(secs, 2), "rss_after_imports_mb": import_rss,
            "spill_peak_mb": disk.peak_mb, "profiles": n_profiles, "columns": n_cols,
            "output_mb": round(out_mb, 1)}


def measure_pandas(folder: Path) -> dict:
    """In a fresh process: the in-memory pandas path (read everything, build_profiles)."""
    import numpy as np
    import pandas as pd

    from adpilot.backends.executor import read_parquet_parts
    from adpilot.profiling.profiles import build_profiles

    import_rss = _rss_mb()
    t = time.perf_counter()
    reviews = pd.read_parquet(folder / "reviews.parquet")
    customers = pd.read_parquet(folder / "customers.parquet")
    aspects = read_parquet_parts(folder / "aspects")
    emb = read_parquet_parts(folder / "embeddings").drop(columns="id").to_numpy(np.float32)
    inputs_rss = _rss_mb()
    prof = build_profiles(reviews, customers=customers, sentiment=reviews["polarity"],
                          aspects=aspects, review_embeddings=emb)
    secs = time.perf_counter() - t
    return {"seconds": round(secs, 2), "rss_after_imports_mb": import_rss,
            "rss_after_reading_inputs_mb": inputs_rss, "profiles": len(prof.table)}


def run_measured(args: list[str]) -> tuple[dict, float]:
    """Run this script with ``args`` in a fresh process; its JSON line and its peak RSS (MB)
    from the kernel (``wait4`` rusage ``ru_maxrss``: the child's own high-water mark)."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen([sys.executable, __file__, *args], stdout=out)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise SystemExit(f"{args} failed with {proc.returncode}")
        out.seek(0)
        line = out.read().strip().splitlines()[-1]
    return json.loads(line), round(usage.ru_maxrss / 1024, 1)


def memory_mode(args) -> dict:
    """Each size: inputs written to Parquet in one process, then the DuckDB build and the
    pandas build each measured in a fresh process of their own (this driver imports no data
    libraries, so a child's peak does not include a large parent)."""
    root = Path(args.data_dir)
    root.mkdir(parents=True, exist_ok=True)
    runs = []
    for n in [int(x) for x in args.sizes.split(",")]:
        subprocess.run([sys.executable, __file__, "--prepare", str(n), "--data-dir", str(root)],
                       check=True)
        folder = root / str(n)
        meta = json.loads((folder / "done").read_text())
        duck, duck_peak = run_measured(["--measure", "duckdb", "--data-dir", str(folder),
                                        "--memory-limit", args.memory_limit,
                                        "--threads", str(args.threads)])
        run = {"rows": n, "users": duck["profiles"], "aspect_rows": meta["aspect_rows"],
               "input_mb": round(sum(f.stat().st_size for f in folder.rglob("*.parquet"))
                                 / 2**20, 1),
               "duckdb": {"peak_rss_mb": duck_peak, **duck}}
        if not args.skip_pandas:
            pand, pand_peak = run_measured(["--measure", "pandas", "--data-dir", str(folder)])
            assert pand["profiles"] == duck["profiles"], (pand, duck)
            run["pandas"] = {"peak_rss_mb": pand_peak, **pand}
        runs.append(run)
        print(json.dumps(run), flush=True)
    first, last = runs[0]["duckdb"], runs[-1]["duckdb"]
    return {"mode": "memory",
            "data": "real reviews resampled with replacement, seed 0, N/5 users "
                    "(benchmarks/profile_build.py make_rows); rating polarity; aspect opinions "
                    "and 64-dim LSA embeddings computed once per real review and resampled "
                    "with it; inputs read from Parquet on disk",
            "measure": "each build in a fresh process that only reads the Parquet inputs and "
                       "writes profiles.parquet; peak = the kernel's ru_maxrss of that process "
                       "(wait4); rss_after_imports = RSS before the build starts",
            "duckdb_settings": {"memory_limit": args.memory_limit, "threads": args.threads,
                                "users_per_bucket": 20_000,
                                "method": "inputs written once into one partition per "
                                          "user-id range of ~20,000 users, then one "
                                          "aggregation per partition",
                                "preserve_insertion_order": False,
                                "temp_directory": "a fresh folder holding the partition files "
                                                  "and DuckDB's spill (spill_peak_mb: its "
                                                  "peak size on disk)"},
            "cpu_lock": args.cpu_lock,
            "runs": runs,
            "duckdb_peak_ratio_last_first": round(last["peak_rss_mb"] / first["peak_rss_mb"], 2),
            "duckdb_above_imports_ratio_last_first": round(
                (last["peak_rss_mb"] - last["rss_after_imports_mb"])
                / (first["peak_rss_mb"] - first["rss_after_imports_mb"]), 2)}


def sentiment_child(args) -> dict:
    from profile_build import make_rows

    from adpilot.artifacts import ModelStore
    from adpilot.backends.executor import Stage
    from adpilot.config import get_settings
    from adpilot.profiling.sentiment import default_model_dir
    from adpilot.profiling.steps import SentimentStage

    store = ModelStore.from_settings(get_settings())
    models_dir = str(default_model_dir("polarity", "en", store).parent)
    if not (Path(models_dir) / "sentiment-polarity-zh" / "meta.json").is_file():
        raise SystemExit(f"build the default models first (adpilot models fetch sentiment); "
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
    ap.add_argument("--mode", choices=["pipeline", "memory", "sentiment"])
    ap.add_argument("--executor", choices=["local", "ray"], default="local")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--sizes", default="100000,300000,1000000")
    ap.add_argument("--batch-size", type=int, default=20_000)
    ap.add_argument("--fit-sample", type=int, default=20_000)
    ap.add_argument("--memory-limit", default="256MB", help="DuckDB memory_limit (memory mode)")
    ap.add_argument("--threads", type=int, default=2, help="DuckDB threads (memory mode)")
    ap.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "adpilot-scale-mem"),
                    help="memory mode: where the Parquet inputs are written (kept, reused)")
    ap.add_argument("--skip-pandas", action="store_true")
    ap.add_argument("--cpu-lock", default="", help="how the run was serialised (recorded)")
    ap.add_argument("--prepare", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--measure", choices=["duckdb", "pandas"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.prepare:
        prepare_inputs(args.prepare, Path(args.data_dir))
        return
    if args.measure:
        folder = Path(args.data_dir)
        out = (measure_duckdb(folder, args.memory_limit, args.threads)
               if args.measure == "duckdb" else measure_pandas(folder))
        print(json.dumps(out))
        return
    if args.mode is None:
        ap.error("--mode is required")
    RESULTS.mkdir(exist_ok=True)
    if args.mode == "memory":
        result = memory_mode(args)
        name = ("scale_memory.json" if args.memory_limit == "256MB"
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
