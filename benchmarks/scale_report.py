"""Summarise the scale benchmarks (benchmarks/results/scale_*.json) into
benchmarks/results/scale.md, with the estimated time on N machines.

Estimate (stated in the output): each machine is like this one (2 cores); the batch stages
(sentiment, aspects, embeddings) are per-row and split evenly over N machines at the per-machine
throughput the Ray run measured here; the driver-side steps (Ray start, LSA fit on the sample,
DuckDB aggregation, k-means, segment statistics) stay on one machine and do not shrink; reading
and writing Parquet on shared storage costs nothing extra. The model-sentiment line uses the
measured Ray throughput of the fine-tuned models per machine instead of the rating polarity.

Usage: python benchmarks/scale_report.py
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
PARALLEL = ("sentiment", "aspects", "embeddings")


def load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def main() -> None:
    lines = ["# Scale-out benchmarks", "",
             "Data: real reviews from ../shared/data resampled with replacement (seed 0), N/5 "
             "users, real ages; 2 shared CPU cores, other jobs running at the same time "
             "(timings are noisy). Memory is PSS of the process and all its children.", ""]
    runs = {ex: load(f"scale_pipeline_{ex}.json") for ex in ("local", "ray")}
    if any(runs.values()):
        lines += ["## 1,000,000 review rows: profiling on the local and the Ray executor", "",
                  "| executor | rows | users | total s | rows/s | peak memory MB | stage seconds |",
                  "|---|---|---|---|---|---|---|"]
        for ex, r in runs.items():
            if r:
                stages = ", ".join(f"{k} {v:.0f}" for k, v in r["stage_seconds"].items())
                lines.append(f"| {ex} | {r['rows']:,} | {r['users']:,} | {r['seconds_total']:.0f} |"
                             f" {r['rows_per_s']:,} | {r['peak_pss_mb']:,.0f} | {stages} |")
        lines += ["", "Stages: rating polarity, aspect opinions, LSA embeddings (64-d, fitted on a "
                  "seeded sample of 20,000 texts) as Parquet parts; profiles in DuckDB; k-means "
                  "k=6; segment statistics in DuckDB.", ""]
    ray = runs.get("ray")
    sent = load("scale_sentiment_ray.json")
    if ray:
        st = ray["stage_seconds"]
        par = sum(st.get(k, 0) for k in PARALLEL)
        fixed = ray["seconds_total"] - par
        lines += ["## Estimated time for 1,000,000 reviews on N machines", "",
                  f"From the Ray run: batch stages {par:.0f} s (parallel part), driver-side "
                  f"steps {fixed:.0f} s (Ray start, LSA fit, DuckDB, k-means: not divided).", ""]
        head = "| N machines | rating polarity pipeline, min |"
        rule = "|---|---|"
        if sent:
            per_s = sent["reviews_per_s"]
            head += " + fine-tuned model sentiment, min |"
            rule += "---|"
        lines += [head, rule]
        for n in (1, 2, 4, 8, 16, 32):
            t = fixed + par / n
            row = f"| {n} | {t / 60:.1f} |"
            if sent:
                row += f" {(t + 1_000_000 / (per_s * n)) / 60:.1f} |"
            lines.append(row)
        lines += ["", "Assumptions: machines like this one (2 cores each); the batch stages are "
                  "per-row and split evenly (Ray throughput per machine as measured here); the "
                  "driver-side steps stay on one machine; shared Parquet storage costs nothing "
                  "extra; no straggler or network cost. The model column adds 1,000,000 reviews "
                  "at the measured Ray throughput of the fine-tuned polarity models per machine.",
                  ""]
    for ex in ("local", "ray"):
        s = load(f"scale_sentiment_{ex}.json")
        if s:
            if ex == "local":
                lines += ["## Fine-tuned sentiment models as a batch stage", "",
                          "| executor | reviews | reviews/s | s | peak memory MB |",
                          "|---|---|---|---|---|"]
            lines.append(f"| {ex} | {s['rows']:,} | {s['reviews_per_s']} | {s['seconds']} | "
                         f"{s['peak_pss_mb']:,.0f} |")
    if load("scale_sentiment_local.json") or load("scale_sentiment_ray.json"):
        lines.append("")
    mem = load("scale_memory.json")
    if mem:
        lines += ["## Profile building memory, 100k → 1M rows", "",
                  "| rows | users | DuckDB s | DuckDB peak RSS MB | DuckDB above imports MB | "
                  "pandas s | pandas peak RSS MB |",
                  "|---|---|---|---|---|---|---|"]
        for r in mem["runs"]:
            d, p = r["duckdb"], r.get("pandas", {})
            lines.append(f"| {r['rows']:,} | {r['users']:,} | {d['seconds']} | "
                         f"{d['peak_rss_mb']} | {d['peak_rss_mb'] - d['rss_after_imports_mb']:.1f}"
                         f" | {p.get('seconds', '')} | {p.get('peak_rss_mb', '')} |")
        s = mem["duckdb_settings"]
        lines += ["", f"Each build in a fresh process reading Parquet inputs and writing "
                  f"profiles.parquet; peak = ru_maxrss. DuckDB memory_limit {s['memory_limit']}, "
                  f"threads {s['threads']}, users in id ranges of about "
                  f"{s.get('users_per_bucket', '?')} (inputs written once into one partition "
                  f"per range, then one aggregation per partition); 1M / 100k peak ratio "
                  f"{mem['duckdb_peak_ratio_last_first']}; CPU lock: {mem.get('cpu_lock', '?')}.",
                  ""]
    gen = load("scale_generate.json")
    if gen:
        f, r = gen["first_run"], gen["resume_run"]
        lines += ["## Batch generation: 2,000 messages, killed halfway and resumed", "",
                  f"Server: {gen['server']}; concurrency {gen['concurrency']}, max_tokens "
                  f"{gen['max_tokens']}.", "",
                  f"- first run: SIGKILL after {f['killed_after_s']} s with "
                  f"{f['stored_at_kill']} messages stored ({f['messages_per_s']} msg/s)",
                  f"- resume: {r['done_before']} already done, {r['generated']} generated, "
                  f"{r['failed']} failed in {r['seconds']} s ({r['messages_per_s']} msg/s)",
                  f"- stored {gen['stored']} rows, {gen['distinct_keys']} distinct keys for "
                  f"{gen['messages']} briefs; rows per run {gen['rows_per_run']}; checks "
                  f"{gen['checks']} → exactly once: **{gen['exactly_once']}**", ""]
    (RESULTS / "scale.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
