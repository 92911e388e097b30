"""``adpilot generate``: copy variants with guardrail results, for one product (``--product``) or
for every product of a catalogue (``--products``, one JSON line per product in ``--out``)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from adpilot.cli._common import console, err_console, model_store, print_json


def generate(
    product: Path = typer.Option(None, "--product", help="Product record (JSON): id, title, "
                                 "category, price, description, attributes."),
    products: Path = typer.Option(None, "--products", help="Catalogue (JSONL or CSV), one "
                                  "product record per line; needs --out."),
    audience: Path = typer.Option(..., "--audience", help="Segment description or user profile "
                                  "(JSON), may include review snippets under 'reviews'."),
    channel: str = typer.Option(..., "--channel", help="social | email | sms | push | search_ad"),
    lang: str = typer.Option("en", "--lang", help="en | zh"),
    n: int = typer.Option(1, "-n", min=1, max=20, help="Number of variants."),
    best_of: int = typer.Option(3, "--best-of", min=1, max=20, help="Write this many "
                                "candidates (at least n) and keep the n best by the scorecard."),
    out: Path = typer.Option(None, "--out", help="With --products: the JSONL output. A rerun "
                             "with the same file skips the products already in it."),
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="With --products: products "
                                    "written at once (useful with --backend openai)."),
    fewshot: int = typer.Option(0, "--fewshot", min=0, max=8, help="Examples of human ad copy "
                                "near each product in its prompt (zh: AdvertiseGen); 0 = off."),
    backend: str = typer.Option("llamacpp", "--backend", help="llamacpp | openai | transformers"),
    model: str = typer.Option(None, "--model", help="Model name or path (GGUF file, HF directory, "
                              "or the server's model name)."),
    base_url: str = typer.Option(None, "--base-url", envvar="ADPILOT_LLM_BASE_URL",
                                 help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1"),
    brand: Path = typer.Option(None, "--brand", help="Brand kit YAML (default: built-in)."),
    max_attempts: int = typer.Option(3, "--max-attempts", min=1, help="Tries per variant."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not reuse cached replies."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Generate copy variants; each reports its guardrail violations and whether it passed."""
    from adpilot.config import get_settings
    from adpilot.datasets_fetch import DataSources
    from adpilot.generation import CopyGenerator, channel_spec, load_brand
    from adpilot.usecases.studio import fewshot_libraries, read_audience, read_product

    if (product is None) == (products is None):
        raise typer.BadParameter("give one of --product (one record) or --products (a catalogue)")
    if products is not None and out is None:
        raise typer.BadParameter("--products needs --out (the JSONL file to write, or resume)")
    channel_spec(channel, lang)  # fail on a bad channel before loading a model
    aud = read_audience(audience)
    prod = read_product(product) if product is not None else None
    sources = DataSources.from_settings(get_settings())
    shots, note = fewshot_libraries(lang, fewshot, sources)
    if fewshot:
        err_console.print(note, highlight=False)
    llm = open_backend(backend, model, base_url, concurrency)
    gen = CopyGenerator(llm, brand=load_brand(brand),
                        cache=False if no_cache else get_settings().llm_cache_dir,
                        max_attempts=max_attempts, shots=shots, n_shots=max(fewshot, 1),
                        store=model_store())
    try:
        if prod is None:
            _catalogue(gen, products, aud, channel, lang, n, best_of, out, concurrency, as_json,
                       sources)
            return
        _one(gen, prod, aud, channel, lang, n, best_of, as_json, sources)
    finally:
        llm.close()


def open_backend(backend: str, model: str | None, base_url: str | None, concurrency: int = 1):
    """The LLM backend from the CLI options; an ``openai`` server gets ``concurrency``
    requests at once (at least its default)."""
    from adpilot.backends.llm import get_backend
    from adpilot.config import get_settings
    from adpilot.usecases.llm import backend_options

    settings = get_settings()
    options = backend_options(backend, model, base_url, models_dir=settings.models_dir,
                              parallel=settings.llm_parallel)
    if backend == "openai" and concurrency > 1:
        options["concurrency"] = concurrency
    return get_backend(backend, **options)


def _one(gen, prod, aud, channel: str, lang: str, n: int, best_of: int, as_json: bool,
         sources) -> None:
    from adpilot.usecases.studio import write_copy

    with err_console.status(f"writing {max(n, best_of)} {channel} candidate(s) with "
                            f"{gen.backend.name}, keeping {n} …"):
        result = write_copy(gen, prod, aud, channel, lang, n=n, best_of=best_of,
                            sources=sources).result
    payload = result.as_dict()
    if as_json:
        print_json(payload)
        return
    table = Table("#", "copy", "passed", "violations",
                  title=f"{channel} · {lang} · {gen.backend.model_id}")
    for i, v in enumerate(result.variants, 1):
        table.add_row(str(i), v.text, "yes" if v.passed else "no", "\n".join(map(str, v.violations)))
    console.print(table)
    console.print(f"{payload['tokens']['total']} tokens, {payload['seconds']} s")


def _catalogue(gen, products: Path, aud, channel: str, lang: str, n: int, best_of: int,
               out: Path, concurrency: int, as_json: bool, sources) -> None:
    from adpilot.cli.progress import progress_reporter
    from adpilot.usecases.catalogue import generate_catalogue

    with progress_reporter(labels={"products": f"{channel} copy ({lang})"}) as progress:
        summary = generate_catalogue(gen, products, aud, channel, lang, out=out, n=n,
                                     best_of=best_of, concurrency=concurrency, progress=progress,
                                     sources=sources)
    if as_json:
        print_json(summary.as_dict())
        return
    for s in summary.skipped[:20]:
        err_console.print(f"[yellow]skipped[/] {s}", highlight=False, soft_wrap=True)
    if len(summary.skipped) > 20:
        err_console.print(f"… and {len(summary.skipped) - 20} more skipped (see --json)")
    console.print(f"{summary.read} read = {summary.written} written ({summary.new} now, "
                  f"{summary.done_before} before) + {len(summary.skipped)} skipped; "
                  f"{summary.passed} of {summary.new} passed the guardrails; "
                  f"{summary.completion_tokens} generated tokens, {summary.seconds:.1f} s → {out}",
                  highlight=False)
    if summary.truncated:
        console.print("[yellow]a half-written last line was cut off and written again[/]")
