"""Fine-tuning the copy generator on this machine (2 CPU cores): a small real run.

Data: the Upworthy headline A/B tests (``../shared/data/copy/upworthy_headline_tests.csv``) as
the company's copy. Tests that started before week 201430 train (SFT: each test's winning
headline; DPO: each test's most significant winner/loser pair, z ≥ 1); tests from week 201430
on are held out (the attractiveness model's split, so its verdicts are on tests it never saw).
The brief of a test is its story (excerpt + lede); the prompt is the generator's own (social
post, Upworthy's voice).

Base: Gemma 3 270M, the ``gemma3-270m-q4_k_m`` GGUF dequantised by transformers into float32
(the only offline model small enough to train in minutes on 2 cores). Tuned: LoRA SFT, then DPO
on top of the SFT model.

Each stage is its own process (run them one at a time; each finishes in minutes):

    python evaluation/tune_copy_eval.py prepare
    python evaluation/tune_copy_eval.py train-sft
    python evaluation/tune_copy_eval.py train-dpo
    python evaluation/tune_copy_eval.py ppl base|sft|dpo
    python evaluation/tune_copy_eval.py gen base|sft|dpo
    python evaluation/tune_copy_eval.py report      → evaluation/results/tune_copy.{json,md}

Work files (data, models, stage outputs) go to ``out/tune/`` (not in git).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "out" / "tune"
RESULTS = Path(__file__).parent / "results"
BASE = "gemma3-270m-q4_k_m"
SEED = 0
SFT = {"steps": 80, "batch_size": 4, "lr": 2e-4, "lora_r": 8}
DPO = {"steps": 40, "batch_size": 2, "lr": 5e-5, "lora_r": 8, "beta": 0.1}
N_PPL, N_GEN = 100, 50
GEN = {"max_attempts": 2, "max_tokens": 96, "temperature": 0.7, "seed": SEED}


def _store():
    """The settings' model store (this script is a shell: it reads the settings)."""
    from adpilot.artifacts import ModelStore
    from adpilot.config import get_settings

    return ModelStore.from_settings(get_settings())


def _models() -> dict[str, str]:
    from adpilot.tuning.base import resolve_base

    return {"base": str(resolve_base(BASE, store=_store())), "sft": str(WORK / "gemma-sft"),
            "dpo": str(WORK / "gemma-sft-dpo")}


def _save(name: str, payload: dict) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / f"stage-{name}.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False))


def _load(name: str) -> dict:
    return json.loads((WORK / f"stage-{name}.json").read_text())


def prepare() -> None:
    from adpilot.cli import main

    for kind, split in (("sft", "train"), ("dpo", "train"), ("sft", "heldout")):
        assert main(["tune", "prepare", "--source", "upworthy", "--kind", kind, "--split", split,
                     "--out", str(WORK / f"{kind}_{split}.jsonl")]) == 0


def _train(method: str, base: str, out: Path, cfg: dict, name: str) -> None:
    from adpilot.cli import main

    args = ["tune", "copy", "--method", method, "--data", str(WORK / f"{method}_train.jsonl"),
            "--base", base, "--out", str(out), "--seed", str(SEED), "--name", name, "--json"]
    for k, v in cfg.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    assert main(args) == 0


def ppl(which: str) -> None:
    from adpilot.tuning.evaluate import load_briefs, perplexity_rows
    from adpilot.tuning.train import perplexity

    rows = perplexity_rows(load_briefs(WORK / "sft_heldout.jsonl", max(N_PPL, N_GEN), seed=SEED)[:N_PPL])
    t0 = time.perf_counter()
    out = perplexity(_models()[which], rows, device="auto")
    _save(f"ppl-{which}", {**out, "seconds": round(time.perf_counter() - t0, 1)})
    print(which, out)


def gen(which: str) -> None:
    from adpilot.tuning.evaluate import copy_metrics, generate_copies, load_briefs

    rows = load_briefs(WORK / "sft_heldout.jsonl", max(N_PPL, N_GEN), seed=SEED)[:N_GEN]
    from adpilot.artifacts import ModelStore
    from adpilot.config import get_settings
    from adpilot.datasets_fetch import DataSources
    from adpilot.models_fetch import ensure_copy_models

    # the guardrails' and scorecard's models
    ensure_copy_models(ModelStore.from_settings(get_settings()),
                       sources=DataSources.from_settings(get_settings()))
    t0 = time.perf_counter()
    copies = generate_copies(_models()[which], rows, device="auto", **GEN, store=_store())
    metrics = copy_metrics(copies, rows)
    _save(f"gen-{which}", {"copies": copies, "metrics": metrics,
                           "seconds": round(time.perf_counter() - t0, 1)})
    print(which, metrics)


def report() -> None:
    from adpilot.tuning.evaluate import load_judge, win_rate
    from adpilot.tuning.registry import ModelRegistry
    from adpilot.tuning.train import load_meta

    judge = load_judge(store=_store())
    res = {"data": "Upworthy headline A/B tests; train = tests before week 201430, held out = "
                   "from 201430", "base": BASE, "seed": SEED, "cpu_cores": os.cpu_count(),
           "sizes": {"perplexity_briefs": N_PPL, "generation_briefs": N_GEN},
           "generation": GEN, "train": {}, "perplexity": {}, "copy": {}, "win_rate": {}}
    models = _models()
    for m in ("sft", "dpo"):
        meta = load_meta(models[m])
        res["train"][m] = {"n_examples": meta["n_examples"], "data_hash": meta["data_hash"],
                           "config": meta["config"], **meta["metrics"]["train"]}
    done = [m for m in ("base", "sft", "dpo") if (WORK / f"stage-gen-{m}.json").is_file()]
    for m in ("base", "sft", "dpo"):
        res["perplexity"][m] = _load(f"ppl-{m}")
    for m in done:
        res["copy"][m] = {**_load(f"gen-{m}")["metrics"], "seconds": _load(f"gen-{m}")["seconds"]}
    copies = {m: _load(f"gen-{m}")["copies"] for m in done}
    for first, second in (("sft", "base"), ("dpo", "base"), ("dpo", "sft")):
        if first in copies and second in copies:
            judged = win_rate(copies[first], copies[second], judge)
            judged.pop("per_brief")
            res["win_rate"][f"{first}_over_{second}"] = judged
    # the same judge against the test's real winning headline (written by Upworthy's editors)
    from adpilot.tuning.evaluate import load_briefs

    rows = load_briefs(WORK / "sft_heldout.jsonl", max(N_PPL, N_GEN), seed=SEED)[:N_GEN]
    human = [{"id": r["id"], "valid": True, "text": json.loads(r["completion"])["text"]} for r in rows]
    for m in done:
        if m != "base":
            judged = win_rate(copies[m], human, judge)
            judged.pop("per_brief")
            res["win_rate"][f"{m}_over_human_winner"] = judged
    res["examples"] = [{"brief": c["id"], "human_winner": human[i]["text"],
                        **{m: copies[m][i]["text"] for m in done}}
                       for i, c in enumerate(copies["base"][:8])]
    reg = ModelRegistry(_store())
    for m in ("sft", "dpo"):
        try:
            reg.update_metrics(models[m], {"eval": {
                "perplexity_heldout": res["perplexity"][m]["perplexity"],
                "perplexity_base": res["perplexity"]["base"]["perplexity"],
                **{k: res["copy"].get(m, {}).get(k) for k in ("guardrail_pass_rate",
                                                              "valid_json_rate", "bleu", "rouge_l")},
                "win_rate_over_base": res["win_rate"].get(f"{m}_over_base", {}).get("win_rate")}})
        except Exception as exc:  # noqa: BLE001 - the report stands without the registry
            print(f"registry not updated for {m}: {exc}", file=sys.stderr)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tune_copy.json").write_text(json.dumps(res, indent=2, ensure_ascii=False))
    (RESULTS / "tune_copy.md").write_text(_markdown(res))
    print(_markdown(res))


def _markdown(r: dict) -> str:
    def wr(x):
        w = x["win_rate"]
        return (f"{w['rate']:.2f} [{w['ci95'][0]:.2f}, {w['ci95'][1]:.2f}] (n = {w['n']}, "
                f"{x['ties']} ties)" if w["rate"] is not None else "n/a")

    t = r["train"]
    lines = [
        "# Fine-tuning the copy generator (LoRA SFT, then DPO) on 2 CPU cores", "",
        f"Base: Gemma 3 270M (`{r['base']}` GGUF dequantised to float32 by transformers). "
        f"Data: {r['data']}. Seed {r['seed']}.", "",
        "| run | examples seen (of) | steps | time | s/step | peak RSS | loss first 5 → last 5 |",
        "|---|---|---|---|---|---|---|"]
    for m in ("sft", "dpo"):
        x = t[m]
        lines.append(f"| {m.upper()} | {x['examples_seen']} ({x['n_examples']}) | {x['steps']} | "
                     f"{x['train_seconds'] / 60:.1f} min | {x['seconds_per_step']} | "
                     f"{x['peak_rss_mb'] / 1024:.1f} GiB | {x['loss_first5']} → {x['loss_last5']} |")
    lines += ["", f"Held-out perplexity of the winning headline given the generator's prompt "
              f"({r['sizes']['perplexity_briefs']} held-out tests, reply tokens only):", "",
              "| model | perplexity |", "|---|---|"]
    lines += [f"| {m} | {r['perplexity'][m]['perplexity']:.2f} |" for m in ("base", "sft", "dpo")]
    lines += ["", f"Generation on {r['sizes']['generation_briefs']} held-out briefs through "
              f"`CopyGenerator` + `transformers` backend ({r['generation']}):", "",
              "| model | valid JSON | guardrail pass | BLEU | ROUGE-L | mean attempts | s/brief |",
              "|---|---|---|---|---|---|---|"]
    for m, c in r["copy"].items():
        lines.append(f"| {m} | {c['valid_json_rate']:.2f} | {c['guardrail_pass_rate']:.2f} | "
                     f"{c['bleu']:.3f} | {c['rouge_l']:.3f} | {c['mean_attempts']} | "
                     f"{c['mean_seconds']} |")
    lines += ["", "Win-rate judged by the attractiveness model (wins / (wins + losses), Wilson 95 %; "
              "a model without valid copy loses the brief):", "",
              "| comparison | all briefs | briefs where both wrote copy | mean P(first beats second) |",
              "|---|---|---|---|"]
    for k, x in r["win_rate"].items():
        lines.append(f"| {k.replace('_', ' ')} | {wr(x)} | {wr(x['both_valid'])} | "
                     f"{x['both_valid']['mean_p_tuned_beats_base']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    stage, *rest = sys.argv[1:] or ["report"]
    if stage == "prepare":
        prepare()
    elif stage == "train-sft":
        _train("sft", BASE, WORK / "gemma-sft", SFT, "copy-sft-gemma270m")
    elif stage == "train-dpo":
        _train("dpo", str(WORK / "gemma-sft"), WORK / "gemma-sft-dpo", DPO, "copy-dpo-gemma270m")
    elif stage == "ppl":
        ppl(rest[0])
    elif stage == "gen":
        gen(rest[0])
    elif stage == "report":
        report()
    else:
        raise SystemExit(__doc__)
