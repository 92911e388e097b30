"""``adpilot tune …``: prepare task data, fine-tune the copy generator (LoRA SFT / DPO), evaluate."""

from __future__ import annotations

from pathlib import Path

import typer

from adpilot.cli._common import console, err_console, model_store, print_json
from adpilot.errors import ConfigError

app = typer.Typer(help="Fine-tune the copy generator on the company's data (LoRA SFT, DPO).",
                  no_args_is_help=True)


@app.command("prepare")
def prepare(
    source: str = typer.Option("upworthy", "--source", help="upworthy (A/B test file) | store "
                               "(adpilot's campaigns and feedback events)"),
    kind: str = typer.Option("sft", "--kind", help="sft (winners) | dpo (winner vs loser pairs)"),
    out: Path = typer.Option(..., "--out", help="JSON-lines file to write."),
    data: Path = typer.Option(None, "--data", help="Upworthy-format CSV (default: the shared "
                              "data folder's copy/upworthy_headline_tests.csv)."),
    split: str = typer.Option("train", "--split", help="upworthy: train (tests before week "
                              "201430) | heldout (from 201430) | all"),
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB", help="store: SQLAlchemy URL."),
    brand: Path = typer.Option(None, "--brand", help="Brand kit YAML for the prompts (default: "
                               "Upworthy's voice for upworthy, the built-in kit for store)."),
    min_z: float = typer.Option(1.0, "--min-z", help="dpo: least evidence (z) a pair needs."),
    limit: int = typer.Option(None, "--limit", min=1, help="Keep a seeded sample of this size."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Write SFT examples or DPO pairs in the generator's prompt format."""
    from adpilot.generation import load_brand
    from adpilot.tuning import data as td

    if kind not in ("sft", "dpo"):
        raise ConfigError(f"--kind must be sft or dpo, got {kind!r}")
    if source == "upworthy":
        from adpilot.config import get_settings
        from adpilot.datasets import load_dataset
        from adpilot.datasets_fetch import DataSources

        tests = load_dataset("upworthy", data or DataSources.from_settings(get_settings())
                             ).tables["upworthy"]
        if split not in ("train", "heldout", "all"):
            raise ConfigError(f"--split must be train, heldout or all, got {split!r}")
        if split != "all":
            tests = td.split_upworthy(tests)[0 if split == "train" else 1]
        kit = load_brand(brand) if brand else td.UPWORTHY_BRAND
        rows = (td.upworthy_sft(tests, brand=kit) if kind == "sft"
                else td.upworthy_dpo(tests, brand=kit, min_z=min_z))
    elif source == "store":
        from adpilot.config import get_settings
        from adpilot.store import Store

        store = Store(db or get_settings().db_url)
        try:
            kit = load_brand(brand)
            rows = (td.campaign_sft(store, brand=kit) if kind == "sft"
                    else td.campaign_dpo(store, brand=kit, min_z=min_z))
        finally:
            store.dispose()
    else:
        raise ConfigError(f"--source must be upworthy or store, got {source!r}")
    if not rows:
        raise ConfigError(f"no {kind.upper()} examples from {source}: it needs tests or campaigns "
                          "with two or more variants and enough impressions")
    rows = td.sample(rows, limit, seed)
    td.write_jsonl(rows, out)
    summary = {"source": source, "kind": kind, "examples": len(rows), "out": str(out),
               "data_hash": td.data_hash(rows)}
    if as_json:
        print_json(summary)
    else:
        console.print(f"{len(rows)} {kind.upper()} examples → {out} (data hash {summary['data_hash']})")


@app.command("copy")
def copy(
    method: str = typer.Option("sft", "--method", help="sft | dpo"),
    data: Path = typer.Option(..., "--data", help="JSON lines from `adpilot tune prepare`."),
    base: str = typer.Option(..., "--base", help="HF model directory, .gguf file, or a GGUF "
                             "name (gemma3-270m-q4_k_m, qwen2.5-coder-1.5b-instruct-q4_k_m)."),
    out: Path = typer.Option(..., "--out", help="Directory for the tuned (merged) model."),
    steps: int = typer.Option(60, "--steps", min=1, help="Optimiser steps."),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Examples (pairs) per step."),
    micro_batch: int = typer.Option(None, "--micro-batch", min=1,
                                    help="Examples per forward pass (default: the batch size)."),
    lr: float = typer.Option(None, "--lr", help="Learning rate (default 2e-4 SFT, 5e-5 DPO)."),
    lora_r: int = typer.Option(8, "--lora-r", min=1),
    beta: float = typer.Option(0.1, "--beta", help="DPO temperature."),
    max_examples: int = typer.Option(None, "--max-examples", min=1,
                                     help="Train on a seeded sample of this many examples."),
    max_minutes: float = typer.Option(None, "--max-minutes", help="Stop after this long."),
    device: str = typer.Option("auto", "--device", help="auto (GPU when there is one) | cpu | "
                               "cuda | mps"),
    seed: int = typer.Option(0, "--seed"),
    name: str = typer.Option(None, "--name", help="Registry name (default copy-<method>)."),
    register: bool = typer.Option(True, "--register/--no-register",
                                  help="Add the model to the registry."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Fine-tune a LoRA adapter on SFT examples or DPO pairs; save the merged model."""
    from adpilot.tuning.data import read_jsonl, sample
    from adpilot.tuning.registry import register_tuned
    from adpilot.tuning.train import TuneConfig, tune

    rows = sample(read_jsonl(data, need=("messages",)), max_examples, seed)
    config = TuneConfig(method=method, steps=steps, batch_size=batch_size,
                        micro_batch=micro_batch or batch_size, lr=lr, lora_r=lora_r, beta=beta,
                        seed=seed, device=device,
                        max_seconds=max_minutes * 60 if max_minutes else None)

    def progress(step: int, total: int, loss: float) -> None:
        if not as_json:
            err_console.print(f"step {step}/{total} loss {loss:.4f}", highlight=False)

    from adpilot.tuning.registry import ModelRegistry

    store = model_store()
    result = tune(rows, base, out, config, progress=progress, store=store)
    payload = {"out": str(result.out_dir), **result.meta}
    if register:
        payload["registry"] = register_tuned(result.out_dir, name=name,
                                             registry=ModelRegistry(store)).ref
    if as_json:
        print_json(payload)
        return
    m = result.meta["metrics"]["train"]
    console.print(f"{method.upper()} {m['steps']} steps on {m['device']} in {m['train_seconds']} s "
                  f"(peak RSS {m['peak_rss_mb']} MB), loss {m['loss_first5']} → {m['loss_last5']}; "
                  f"saved {result.out_dir}" + (f", registered {payload['registry']}" if register else ""))


@app.command("eval")
def evaluate(
    model: Path = typer.Option(..., "--model", help="Tuned model directory."),
    briefs: Path = typer.Option(..., "--briefs", help="Held-out briefs: JSON lines from `adpilot "
                                "tune prepare --split heldout` (or briefs with references)."),
    base: str = typer.Option(None, "--base", help="Model to compare with (default: the tuned "
                             "model's base)."),
    n: int = typer.Option(50, "-n", min=1, help="Briefs to generate copy for."),
    ppl_n: int = typer.Option(100, "--ppl-n", min=1, help="Briefs for perplexity."),
    max_attempts: int = typer.Option(2, "--max-attempts", min=1),
    max_tokens: int = typer.Option(96, "--max-tokens", min=8),
    temperature: float = typer.Option(0.7, "--temperature"),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device"),
    register: bool = typer.Option(True, "--register/--no-register",
                                  help="Store the metrics with the model's registry entry."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Held-out perplexity, BLEU/ROUGE-L, guardrail pass rate and the attractiveness model's
    win-rate of the tuned model over its base, on the same briefs."""
    from adpilot.config import get_settings
    from adpilot.datasets_fetch import DataSources
    from adpilot.models_fetch import ensure_copy_models
    from adpilot.tuning.evaluate import evaluate_models
    from adpilot.tuning.registry import ModelRegistry
    from adpilot.tuning.train import load_meta

    base_ref = base or load_meta(model)["base"]
    store = model_store()
    with err_console.status("building the complaint guardrail's models where missing …"):
        ensure_copy_models(store, parts=("complaint",),  # the guardrail pass rate uses them
                           sources=DataSources.from_settings(get_settings()))
    with err_console.status("evaluating (perplexity, generation, judging) …"):
        report = evaluate_models(model, base_ref, briefs, n=n, ppl_n=ppl_n,
                                 max_attempts=max_attempts, max_tokens=max_tokens,
                                 temperature=temperature, seed=seed, device=device, store=store)
    if register:
        reg = ModelRegistry(store)
        try:
            report["registry"] = reg.update_metrics(str(model), {"eval": report["summary"]}).ref
        except ConfigError:
            report["registry"] = None
    if as_json:
        print_json(report)
        return
    s = report["summary"]
    for key, value in s.items():
        console.print(f"{key}: {value}", highlight=False)
