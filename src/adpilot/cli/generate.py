"""``adpilot generate``: copy variants for one product and one audience, with guardrail results."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.table import Table

from adpilot.cli._common import console, err_console, print_json
from adpilot.errors import InputError


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise InputError(f"{what} file not found", path=str(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc})", path=str(path)) from None
    if not isinstance(data, dict):
        raise InputError(f"the {what} must be a JSON object", path=str(path))
    return data


def _backend_options(backend: str, model: str | None, base_url: str | None) -> dict:
    """Constructor options per backend name (each backend names its model differently)."""
    options = {"llamacpp": {"model": model} if model else {},
               "openai": {"base_url": base_url, "model": model},
               "transformers": {"model_dir": model}}
    return {k: v for k, v in options.get(backend, {}).items() if v is not None}


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
    from adpilot.backends.llm import get_backend
    from adpilot.data.records import Product
    from adpilot.generation import Audience, CopyGenerator, channel_spec, load_brand

    channel_spec(channel, lang)  # fail on a bad channel before loading a model
    try:
        prod = Product.model_validate(_read_json(product, "product"))
    except ValidationError as exc:
        raise InputError(f"not a valid product record: {exc}", path=str(product)) from None
    try:
        aud = Audience.model_validate(_read_json(audience, "audience"))
    except ValidationError as exc:
        raise InputError(f"not a valid audience: {exc}", path=str(audience)) from None
    llm = get_backend(backend, **_backend_options(backend, model, base_url))
    gen = CopyGenerator(llm, brand=load_brand(brand), cache=False if no_cache else None,
                        max_attempts=max_attempts)
    try:
        with err_console.status(f"writing {max(n, best_of)} {channel} candidate(s) with "
                                f"{backend}, keeping {n} …"):
            result = gen.generate(prod, aud, channel, lang, n=n, best_of=best_of)
    finally:
        llm.close()
    payload = result.as_dict()
    if as_json:
        print_json(payload)
        return
    table = Table("#", "copy", "passed", "violations", title=f"{channel} · {lang} · {llm.model_id}")
    for i, v in enumerate(result.variants, 1):
        table.add_row(str(i), v.text, "yes" if v.passed else "no", "\n".join(v.violations))
    console.print(table)
    console.print(f"{payload['tokens']['total']} tokens, {payload['seconds']} s")
