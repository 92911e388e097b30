"""The copy studio: copy variants for a product × audience × channel × language, with
guardrail results, ranked by the scorecard where the scoring stage is installed. One path for
the CLI (records from files), the API and the dashboard (records from the store)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from adpilot import fallbacks
from adpilot.errors import InputError

Channel = Literal["social", "email", "sms", "push", "search_ad"]
Lang = Literal["en", "zh"]
Progress = Callable[[float, str], None]


class GenerateRequest(BaseModel):
    """A request for copy from records in the store (the API's and the dashboard's input)."""

    product_id: str = Field(description="A product in the store.")
    segment: str | None = Field(None, description="Write for this segment …")
    user_id: str | None = Field(None, description="… or for this user's profile …")
    audience: str | None = Field(None, description="… or for this free description.")
    channel: Channel = "email"
    lang: Lang = "en"
    n: int = Field(3, ge=1, le=10, description="Number of variants.")


@dataclass
class StudioResult:
    """The generator's result, whether it was ranked, and the fallbacks used on the way."""

    result: Any  # adpilot.generation.GenerationResult
    scored: bool = False
    fallbacks: list[dict] = field(default_factory=list)

    def as_dict(self, *, extras_only: bool = False) -> dict:
        """The result's fields, then ``scoring`` and ``fallbacks`` (only those two with
        ``extras_only``)."""
        extras = {"scoring": "ranked by the scorecard" if self.scored else "not available",
                  "fallbacks": self.fallbacks}
        return extras if extras_only else {**self.result.as_dict(), **extras}


def scoring_available() -> bool:
    """Whether the optional scoring stage is installed."""
    return importlib.util.find_spec("adpilot.scoring") is not None


def ensure_copy_models(store: Any, langs: list[str], *,
                       parts: tuple[str, ...] = ("complaint", "fluency"),
                       progress: Progress | None = None, sources: Any = None) -> None:
    """The explicit training step before copy is written or scored: of ``parts``, the complaint
    guardrail's classifier and the scorecard's fluency reference of ``langs``, built where
    ``store`` (a :class:`~adpilot.artifacts.ModelStore`) lacks them, from the data sets of
    ``sources`` (a :class:`~adpilot.datasets_fetch.DataSources`); without their data, or with
    no store (None: nothing to build into), the stages run their stated fallbacks."""
    from adpilot.datasets_fetch import DataSources
    from adpilot.models_fetch import ensure_copy_models as ensure

    if not isinstance(sources, DataSources):
        raise TypeError("ensure_copy_models needs sources=DataSources(...): where the models' "
                        "training data are (a shell builds it with DataSources.from_settings)")

    def tick(name: str, done: int, total: int) -> None:
        if progress:
            progress(0.0, f"{name}: {done} of {total} ready")

    if store is not None:
        ensure(store, langs, sources=sources, parts=parts, progress=tick)


def write_copy(generator, product, audience, channel: str, lang: str, *, n: int,
               best_of: int | None = None, rank: bool = False,
               progress: Progress | None = None, sources: Any = None) -> StudioResult:
    """Write ``n`` variants with ``generator`` (a :class:`~adpilot.generation.CopyGenerator`);
    with ``rank``, order them best first by the scorecard (each then carries its scores).
    ``sources``: where the copy models' training data are (see :func:`ensure_copy_models`)."""
    from adpilot.generation import channel_spec

    channel_spec(channel, lang)
    with fallbacks.recording() as used:  # stages that ran without their default model
        ensure_copy_models(generator.store, [lang],
                           parts=("complaint", "fluency") if rank else ("complaint",),
                           progress=progress, sources=sources)
        result = generator.generate(product, audience, channel, lang, n=n, best_of=best_of)
        if rank:
            if progress:
                progress(1.0, "scoring the variants")
            result.variants = generator.rank(result.variants, product, audience, lang)
    return StudioResult(result, scored=rank, fallbacks=[f.as_dict() for f in used.values()])


def generate_copy(data, copy, body: GenerateRequest, progress: Progress | None = None, *,
                  sources: Any = None) -> dict:
    """Resolve the product and audience of ``body`` from ``data`` (the store's records, e.g.
    :class:`adpilot.usecases.data_overview.DataService`) and write with ``copy``'s generator (a service
    with ``lock`` and ``generator(on_message=...)``), one generation at a time. ``sources``: where
    the copy models' training data are (see :func:`ensure_copy_models`)."""
    from adpilot.generation import channel_spec

    channel_spec(body.channel, body.lang)
    product = data.product(body.product_id)
    audience = data.audience(body.lang, segment=body.segment, user_id=body.user_id,
                             description=body.audience)
    done = []

    def tick(_variant) -> None:
        done.append(1)
        if progress:
            progress(len(done) / body.n, f"{len(done)} of {body.n} variants")

    with copy.lock:
        out = write_copy(copy.generator(on_message=tick), product, audience, body.channel,
                         body.lang, n=body.n, rank=scoring_available(), progress=progress,
                         sources=sources)
    return {**out.result.as_dict(), "product_id": body.product_id,
            "audience": audience.describe(body.lang), **out.as_dict(extras_only=True)}


def read_record(path: Path, what: str) -> dict:
    """A JSON object from ``path``; errors name the file and what is wrong."""
    if not path.is_file():
        raise InputError(f"{what} file not found", path=str(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc})", path=str(path)) from None
    if not isinstance(data, dict):
        raise InputError(f"the {what} must be a JSON object", path=str(path))
    return data


def read_product(path: Path):
    """A :class:`~adpilot.data.records.Product` from a JSON file."""
    from adpilot.data.records import Product

    try:
        return Product.model_validate(read_record(path, "product"))
    except ValidationError as exc:
        raise InputError(f"not a valid product record: {exc}", path=str(path)) from None


def read_audience(path: Path):
    """An :class:`~adpilot.generation.Audience` (segment or user profile) from a JSON file."""
    from adpilot.generation import Audience

    try:
        return Audience.model_validate(read_record(path, "audience"))
    except ValidationError as exc:
        raise InputError(f"not a valid audience: {exc}", path=str(path)) from None


def fewshot_libraries(lang: str, n_shots: int, sources: Any) -> tuple[dict, str]:
    """``(shots, note)`` for :class:`~adpilot.generation.CopyGenerator`'s ``shots``: with
    ``n_shots`` > 0 and Chinese copy, the AdvertiseGen library (the training part of its seeded
    split, :func:`adpilot.generation.fewshot.adgen_library`, found through the
    :class:`~adpilot.datasets_fetch.DataSources` ``sources``). ``note`` says what was used, or
    why nothing was (no library for the language). A missing data file raises
    :class:`~adpilot.errors.InputError` naming where it was looked for and how to get it."""
    if n_shots <= 0:
        return {}, "few-shot examples off"
    if lang != "zh":
        return {}, (f"no few-shot library for {lang!r} copy (AdvertiseGen is Chinese); "
                    "writing without examples")
    from adpilot.errors import DatasetUnavailableError
    from adpilot.generation.fewshot import adgen_library

    try:
        library = adgen_library(sources)
    except DatasetUnavailableError as exc:
        raise InputError(
            f"--fewshot needs the AdvertiseGen records (copy/adgen_zh.jsonl): {exc}. Put the "
            "shared data folder in place (ADPILOT_DATA_DIR), fetch it with `adpilot datasets "
            "fetch adgen_zh`, or run without --fewshot") from None
    return {"zh": library}, (f"{n_shots} few-shot example(s) per product from "
                             f"{len(library)} AdvertiseGen texts")
