"""``adpilot generate-batch``: ``adpilot generate --products … --backend openai`` under its old
name (guardrails, structured output, best-of-N; resumable by the output file), or, with
``--briefs``, the deprecated raw-prompt mode (no guardrails, no structured output; a SQLite
ledger for resuming)."""

from __future__ import annotations

from pathlib import Path

import typer

from adpilot.cli._common import console, err_console, print_json


def generate_batch(
    products: Path = typer.Option(None, "--products", help="Catalogue (JSONL or CSV): runs "
                                  "`adpilot generate --products` with the openai backend."),
    audience: Path = typer.Option(None, "--audience", help="With --products: the audience JSON."),
    channel: str = typer.Option("social", "--channel", help="With --products."),
    lang: str = typer.Option("en", "--lang", help="With --products: en | zh"),
    n: int = typer.Option(1, "-n", min=1, max=20, help="With --products: variants per product."),
    best_of: int = typer.Option(3, "--best-of", min=1, max=20, help="With --products."),
    fewshot: int = typer.Option(0, "--fewshot", min=0, max=8, help="With --products."),
    briefs: Path = typer.Option(None, "--briefs", help="Deprecated raw mode: CSV, JSONL or "
                                "Parquet with columns key, prompt (and optionally system)."),
    ledger: Path = typer.Option(None, "--ledger", help="SQLite progress ledger (default: "
                                "<briefs>.ledger.sqlite). Rerun with the same ledger to resume."),
    base_url: str = typer.Option(None, "--base-url", envvar="ADPILOT_LLM_BASE_URL",
                                 help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1"),
    model: str = typer.Option(None, "--model", envvar="ADPILOT_LLM_MODEL",
                              help="The server's model name."),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="Requests in flight."),
    max_tokens: int = typer.Option(64, "--max-tokens", min=1),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, max=2.0),
    max_retries: int = typer.Option(3, "--max-retries", min=0,
                                    help="Retries per request (exponential backoff)."),
    backoff: float = typer.Option(0.5, "--backoff", min=0.0, help="First retry delay, seconds."),
    timeout: float = typer.Option(120.0, "--timeout", min=1.0, help="Seconds per request."),
    out: Path = typer.Option(None, "--out", help="With --products: the JSONL output (resumed "
                             "on rerun). With --briefs: also export the stored messages "
                             "(.parquet or .csv)."),
    db: str = typer.Option(None, "--db", help="Also load the messages into this store "
                           "(table generated_messages)."),
    executor: str = typer.Option("local", "--executor", help="local (threads) | ray (actors)."),
    ray_address: str = typer.Option(None, "--ray-address", help="Join this Ray cluster."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Copy for a catalogue through an OpenAI-compatible server (same as ``adpilot generate
    --products … --backend openai``). Deprecated: ``--briefs`` sends raw prompts without
    guardrails; finished messages are committed to a ledger one by one, so an interrupted run
    resumes where it stopped and never stores a message twice."""
    if (products is None) == (briefs is None):
        raise typer.BadParameter("give --products (a catalogue; the generate path) or --briefs "
                                 "(deprecated raw prompts)")
    if products is not None:
        from adpilot.cli.generate import generate

        if audience is None:
            raise typer.BadParameter("--products needs --audience")
        generate(product=None, products=products, audience=audience, channel=channel, lang=lang,
                 n=n, best_of=best_of, out=out, concurrency=concurrency, fewshot=fewshot,
                 backend="openai", model=model, base_url=base_url, brand=None,
                 max_attempts=3, no_cache=False, as_json=as_json)
        return
    err_console.print("[yellow]deprecated:[/] --briefs sends raw prompts with no guardrails and "
                      "no structured output; use `adpilot generate --products catalogue.jsonl "
                      "--backend openai` (or generate-batch --products)", highlight=False)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from adpilot.backends.executor import get_executor
    from adpilot.backends.llm import GenerationParams, get_backend
    from adpilot.generation.batch import Ledger, read_briefs
    from adpilot.generation.batch import generate_batch as run_batch

    frame = read_briefs(briefs)
    ledger_path = ledger or briefs.with_name(briefs.name + ".ledger.sqlite")
    options = {"base_url": base_url, "model": model, "max_retries": max_retries,
               "backoff": backoff, "timeout": timeout}
    backend = get_backend("openai", concurrency=concurrency, **options)
    params = GenerationParams(max_tokens=max_tokens, temperature=temperature)
    ex = get_executor(executor, **({"address": ray_address} if executor == "ray" else {}))
    try:
        with Ledger(ledger_path) as book, Progress(
                TextColumn("[bold]generate"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=err_console, transient=as_json) as bar:
            task = bar.add_task("generate", total=len(frame))
            result = run_batch(frame, backend, book, params, concurrency=concurrency, executor=ex,
                               stage_options={**options, "base_url": backend.base_url},
                               progress=lambda d, t: bar.update(task, completed=d, total=t))
            stored = book.messages()
    finally:
        ex.close()
        backend.close()
    summary = {**result.summary(), "ledger": str(ledger_path), "stored": len(stored)}
    if out:
        from adpilot.data.csv_safe import write_csv

        out.parent.mkdir(parents=True, exist_ok=True)
        (stored.to_parquet(out, index=False) if out.suffix == ".parquet"
         else write_csv(stored, out))
        summary["out"] = str(out)
    if db:
        from adpilot.cli._common import open_store

        store = open_store(db)
        store.write_table("generated_messages", stored)
        store.dispose()
    if as_json:
        print_json(summary)
        return
    console.print(f"run {result.run}: {result.generated} generated, {result.failed} failed, "
                  f"{result.done_before} already done before this run; {len(stored)} of "
                  f"{len(frame)} stored in {ledger_path} ({result.seconds:.1f} s)")
    if result.failed:
        console.print("[yellow]rerun the same command to retry the failed keys[/]")
