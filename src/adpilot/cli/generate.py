"""``adpilot generate``: copy variants for one product and one audience, with guardrail results."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from adpilot.cli._common import console, err_console, print_json


def generate(
    product: Path = typer.Option(..., "--product", help="Product record (JSON): id, title, "
                                 "category, price, description, attributes."),
    audience: Path = typer.Option(..., "--audience", help="Segment description or user profile "
                                  "(JSON), may include review snippets under 'reviews'."),
    channel: str = typer.Option(..., "--channel", help="social | email | sms | push | search_ad"),
    lang: str = typer.Option("en", "--lang", help="en | zh"),
    n: int = typer.Option(1, "-n", min=1, max=20, help="Number of variants."),
    best_of: int = typer.Option(3, "--best-of", min=1, max=20, help="Write this many "
                                "candidates (at least n) and keep the n best by the scorecard."),
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
    from adpilot.generation import CopyGenerator, channel_spec, load_brand
    from adpilot.usecases.llm import build_backend
    from adpilot.usecases.studio import read_audience, read_product, write_copy

    channel_spec(channel, lang)  # fail on a bad channel before loading a model
    prod, aud = read_product(product), read_audience(audience)
    llm = build_backend(backend, model, base_url)
    gen = CopyGenerator(llm, brand=load_brand(brand),
                        cache=False if no_cache else get_settings().llm_cache_dir,
                        max_attempts=max_attempts)
    try:
        with err_console.status(f"writing {max(n, best_of)} {channel} candidate(s) with "
                                f"{backend}, keeping {n} …"):
            result = write_copy(gen, prod, aud, channel, lang, n=n, best_of=best_of).result
    finally:
        llm.close()
    payload = result.as_dict()
    if as_json:
        print_json(payload)
        return
    table = Table("#", "copy", "passed", "violations", title=f"{channel} · {lang} · {llm.model_id}")
    for i, v in enumerate(result.variants, 1):
        table.add_row(str(i), v.text, "yes" if v.passed else "no", "\n".join(map(str, v.violations)))
    console.print(table)
    console.print(f"{payload['tokens']['total']} tokens, {payload['seconds']} s")
