"""``adpilot generate-batch``: ``adpilot generate --products … --backend openai`` under its old
name (guardrails, structured output, best-of-N; resumable by the output file; ``--max-retries``,
``--backoff`` and ``--timeout`` go to the openai client), or, with ``--briefs``, the deprecated
raw-prompt mode (no guardrails, no structured output; a SQLite ledger for resuming; threads or
Ray actors)."""

from __future__ import annotations

from pathlib import Path

import typer

from adpilot.cli._common import console, err_console, model_store, print_json


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
    max_tokens: int = typer.Option(64, "--max-tokens", min=1, help="With --briefs."),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, max=2.0,
                                      help="With --briefs."),
    max_retries: int = typer.Option(3, "--max-retries", min=0, help="Retries per request on a "
                                    "connection error, timeout or HTTP 408/409/429/500/502/"
                                    "503/504 (exponential backoff)."),
    backoff: float = typer.Option(0.5, "--backoff", min=0.0, help="First retry delay, seconds."),
    timeout: float = typer.Option(120.0, "--timeout", min=1.0, help="Seconds per request."),
    out: Path = typer.Option(None, "--out", help="With --products: the JSONL output (resumed "
                             "on rerun). With --briefs: also export the stored messages "
                             "(.parquet or .csv)."),
    db: str = typer.Option(None, "--db", help="Also load the messages into this store "
                           "(table generated_messages)."),
    executor: str = typer.Option("local", "--executor", help="With --briefs: local (threads) | "
                                 "ray (actors). A catalogue runs on threads (--concurrency)."),
    ray_address: str = typer.Option(None, "--ray-address", help="With --briefs: join this Ray "
                                    "cluster."),
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
        _refuse_briefs_options(executor=executor, ray_address=ray_address, ledger=ledger, db=db,
                               max_tokens=max_tokens, temperature=temperature)
        client = {"base_url": base_url, "model": model, "concurrency": concurrency,
                  "max_retries": max_retries, "backoff": backoff, "timeout": timeout}
        _catalogue(products, audience, channel, lang, n, best_of, fewshot, out, concurrency,
                   client, as_json)
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


def _refuse_briefs_options(*, executor: str, ray_address: str | None, ledger: Path | None,
                           db: str | None, max_tokens: int, temperature: float) -> None:
    """With ``--products``, the ``--briefs``-only options are refused by name, never ignored."""
    if executor != "local" or ray_address:
        raise typer.BadParameter(
            f"--executor {executor}{' --ray-address' if ray_address else ''} is not supported "
            "with --products: a catalogue runs on threads in this process, one product line "
            "at a time into --out; use --concurrency N to keep the server busy",
            param_hint="--executor")
    given = [name for name, used in (("--ledger", ledger is not None), ("--db", db is not None),
                                     ("--max-tokens", max_tokens != 64),
                                     ("--temperature", temperature != 0.0)) if used]
    if given:
        raise typer.BadParameter(f"{', '.join(given)} only apply to --briefs; with --products "
                                 "the output file is the progress record and each channel sets "
                                 "its own length and sampling", param_hint=given[0])


def _catalogue(products: Path, audience: Path | None, channel: str, lang: str, n: int,
               best_of: int, fewshot: int, out: Path | None, concurrency: int, client: dict,
               as_json: bool) -> None:
    """``adpilot generate --products`` with an openai backend built from ``client`` (base_url,
    model, concurrency, max_retries, backoff, timeout)."""
    from adpilot.backends.llm import get_backend
    from adpilot.cli.generate import _catalogue as run_catalogue
    from adpilot.config import get_settings
    from adpilot.datasets_fetch import DataSources
    from adpilot.generation import CopyGenerator, channel_spec, load_brand
    from adpilot.usecases.studio import fewshot_libraries, read_audience

    if audience is None:
        raise typer.BadParameter("--products needs --audience", param_hint="--audience")
    if out is None:
        raise typer.BadParameter("--products needs --out (the JSONL file to write, or resume)",
                                 param_hint="--out")
    channel_spec(channel, lang)  # fail on a bad channel before contacting the server
    aud = read_audience(audience)
    sources = DataSources.from_settings(get_settings())
    shots, note = fewshot_libraries(lang, fewshot, sources)
    if fewshot:
        err_console.print(note, highlight=False)
    llm = get_backend("openai", **{k: v for k, v in client.items() if v is not None})
    gen = CopyGenerator(llm, brand=load_brand(None), cache=get_settings().llm_cache_dir,
                        max_attempts=3, shots=shots, n_shots=max(fewshot, 1),
                        store=model_store())
    try:
        run_catalogue(gen, products, aud, channel, lang, n, best_of, out, concurrency, as_json,
                      sources)
    finally:
        llm.close()
