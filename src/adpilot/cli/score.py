"""``adpilot attract …`` (the A/B-trained attractiveness model) and ``adpilot score``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from adpilot.cli._common import console, err_console, model_store, print_json
from adpilot.errors import ConfigError, InputError

attract_app = typer.Typer(help="The attractiveness model trained on real A/B outcomes.",
                          no_args_is_help=True)


def _pairs(data: Path, events_variants: Path | None = None):
    """Pairs from an Upworthy-format file, or from own campaign events + variant texts."""
    import pandas as pd

    from adpilot.data.readers import read_table
    from adpilot.scoring.pairs import arms_from_events, arms_from_upworthy, make_pairs

    frame = read_table(data).frame
    if {"clickability_test_id", "headline", "impressions", "clicks"} <= set(frame.columns):
        for col in ("impressions", "clicks", "test_week"):
            frame[col] = pd.to_numeric(frame[col], errors="coerce")
        return make_pairs(arms_from_upworthy(frame))
    if {"event_id", "campaign", "variant", "type"} <= set(frame.columns):
        if events_variants is None:
            raise ConfigError("campaign events need --variants FILE (campaign_id, variant, text)")
        return make_pairs(arms_from_events(frame, read_table(events_variants).frame))
    if {"text_a", "text_b", "label"} <= set(frame.columns):
        frame["label"] = frame["label"].astype(int)
        if "z" in frame:  # readers keep CSV columns as text
            frame["z"] = pd.to_numeric(frame["z"], errors="coerce").fillna(0.0)
        return frame
    raise InputError("expected Upworthy-format tests (clickability_test_id, headline, "
                     "impressions, clicks), campaign events, or pairs (text_a, text_b, label)",
                     path=str(data))


@attract_app.command("train")
def train(
    data: Path = typer.Option(..., "--data", help="A/B outcomes (Upworthy format, events, or "
                                                  "pairs)."),
    out: Path = typer.Option(None, "--out", help="Model folder (default: the model cache)."),
    extra: list[Path] = typer.Option([], "--extra", help="More outcomes, e.g. own campaigns."),
    variants: Path = typer.Option(None, "--variants", help="Variant texts for event files."),
    before_week: int = typer.Option(None, help="Train only on tests before this YYYYWW week."),
    finetune_epochs: int = typer.Option(None, "--finetune-epochs", min=0,
                                        help="Epochs of MiniLM fine-tuning (default 2, about "
                                             "5-7 min on 2 cores for Upworthy); 0: linear only."),
    finetune_seeds: int = typer.Option(None, "--finetune-seeds", min=1,
                                       help="Fine-tuned scorers (seeds) whose scores are "
                                            "averaged (default 1); each adds one more "
                                            "fine-tuning run."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Train the pairwise attractiveness model."""
    import pandas as pd

    from adpilot.scoring.attractiveness import AttractivenessModel, default_model_dir

    pairs = pd.concat([_pairs(data)] + [_pairs(p, variants) for p in extra], ignore_index=True)
    if before_week:
        pairs = pairs[pairs["test_week"] < before_week]
    from adpilot.cli.progress import progress_reporter

    err_console.print(f"training the attractiveness model on {len(pairs):,} pairs")
    opts = {k: v for k, v in {"finetune_epochs": finetune_epochs,
                              "finetune_seeds": finetune_seeds}.items() if v is not None}
    with progress_reporter() as report:  # every stage with a bar and the time left
        model = AttractivenessModel(**opts).fit(pairs, progress=report)
    with err_console.status("scoring the training pairs …"):
        model.metrics_ = {"train": model.evaluate(pairs)}
        folder = model.save(out or default_model_dir(model_store()))
    summary = {"model": str(folder), "pairs": len(pairs), **model.metrics_["train"]}
    print_json(summary) if as_json else console.print(summary)


@attract_app.command("eval")
def evaluate(
    model: Path = typer.Option(None, "--model", help="Model folder (default: the cache)."),
    data: Path = typer.Option(..., "--data"),
    from_week: int = typer.Option(None, help="Evaluate only tests from this YYYYWW week on."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Pairwise accuracy over within-test pairs of distinct headlines with different CTR."""
    from adpilot.scoring.attractiveness import AttractivenessModel, default_model_dir

    pairs = _pairs(data)
    if from_week:
        pairs = pairs[pairs["test_week"] >= from_week]
    m = AttractivenessModel.load(model or default_model_dir(model_store()))
    with err_console.status(f"scoring {len(pairs):,} pairs …"):
        result = m.evaluate(pairs)
    print_json(result) if as_json else console.print(result)


def _load_json(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read JSON: {exc}", path=str(path)) from None


def score(
    copy: Path = typer.Option(..., "--copy", help="Text file (one copy per line) or JSON list "
                                                  "/ {'variants': [{'text': …}]}."),
    audience: Path = typer.Option(None, "--audience", help="Segment or profile JSON."),
    product: Path = typer.Option(None, "--product", help="Product JSON."),
    references: Path = typer.Option(None, "--references", help="Reference copies, one a line."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Score copies: fluency, relevance, personalisation, diversity, readability, tone,
    compliance and predicted attractiveness, each explained."""
    from adpilot.data import columns as C
    from adpilot.scoring.attractiveness import AttractivenessModel, default_model_dir, is_saved
    from adpilot.scoring.scorecard import Scorecard

    text = copy.read_text(encoding="utf-8") if copy.exists() else None
    if text is None:
        raise InputError("file not found", path=str(copy))
    try:
        doc = json.loads(text)
        copies = ([v["text"] if isinstance(v, dict) else str(v) for v in doc.get("variants", [])]
                  if isinstance(doc, dict) else [str(v) for v in doc])
    except json.JSONDecodeError:
        copies = [line.strip() for line in text.splitlines() if line.strip()]
    if not copies:
        raise InputError("no copies to score", path=str(copy))
    store = model_store()
    model_dir = default_model_dir(store)
    attract = AttractivenessModel.load(model_dir) if is_saved(model_dir) else None
    from adpilot.generation.compliance import scorecard_guardrails

    guards = scorecard_guardrails(product=_load_json(product))
    refs = ([r.strip() for r in references.read_text(encoding="utf-8").splitlines() if r.strip()]
            if references else None)
    from adpilot.config import get_settings
    from adpilot.datasets_fetch import DataSources
    from adpilot.models_fetch import ensure_copy_models

    ensure_copy_models(store, parts=("fluency",),  # missing refs
                       sources=DataSources.from_settings(get_settings()))
    card = Scorecard(attractiveness=attract, guardrails=guards, store=store).score(
        copies, product=_load_json(product), audience=_load_json(audience), references=refs)
    if as_json:
        print_json({"copies": card.drop(columns=[C.LANGUAGE]).to_dict("records"),
                    "set": card.attrs.get("set_diversity"),
                    "attractiveness_model": str(model_dir) if attract else None})
        return
    table = Table("copy", "overall", "attract.", "relevance", "fluency", "compliance")
    for r in card.itertuples():
        table.add_row(r.copy[:60], f"{r.overall:.2f}", f"{r.attractiveness:.2f}",
                      f"{r.relevance_product:.2f}", f"{r.fluency:.2f}", r.why_compliance)
    console.print(table)
