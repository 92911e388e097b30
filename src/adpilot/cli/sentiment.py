"""``adpilot sentiment …``: train, evaluate and apply review sentiment models."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from adpilot.cli._common import console, err_console, print_json
from adpilot.cli.progress import progress_reporter
from adpilot.errors import InputError, MissingColumnError

app = typer.Typer(help="Review sentiment: 5-class rating and polarity, English and Chinese.",
                  no_args_is_help=True)

TEXT_COL_HELP = "Text column; several comma-separated columns are joined with '. ' (e.g. Title,Text)."


def _read(path: Path, text_col: str, label_col: str | None
          ) -> tuple[list[str], list | None, dict]:
    """Texts (and labels) from a data file, and what was left out: rows without any text are
    not used, and are counted and named (on stderr, and in ``--json`` output), never dropped
    silently."""
    from adpilot.data.readers import read_table

    frame = read_table(path).frame
    cols = [c.strip() for c in text_col.split(",") if c.strip()]
    for col in [*cols, *([label_col] if label_col else [])]:
        if col not in frame.columns:
            raise MissingColumnError(col, list(frame.columns), path=str(path))
    import numpy as np

    texts = None
    for col in cols:  # column by column, vectorised: files can have millions of rows
        part = frame[col].astype("string").fillna("").str.strip()
        texts = part if texts is None else texts.str.cat(part, sep=". ").where(
            (texts != "") & (part != ""), texts + part)  # no ". " next to an empty part
    keep = (texts.str.len() > 0).to_numpy()
    if not keep.any():
        raise InputError(f"no row has any text in {', '.join(cols)}", path=str(path))
    skipped = {"rows_read": len(frame), "skipped_no_text": int((~keep).sum())}
    if skipped["skipped_no_text"]:
        rows = (np.flatnonzero(~keep) + 1).tolist()  # 1-based data rows, as a spreadsheet shows
        shown = ", ".join(map(str, rows[:10])) + (", …" if len(rows) > 10 else "")
        err_console.print(f"[yellow]{path}: {len(rows):,} of {len(frame):,} rows have no text in "
                          f"{', '.join(cols)} and were not used (data rows {shown})[/]")
    labels = frame.loc[keep, label_col].tolist() if label_col else None
    return texts[keep].tolist(), labels, skipped


# Minutes the full fine-tune of each default took on 2 quiet cores (fit_seconds in
# evaluation/results/sentiment.json); the bar's own estimate takes over once it runs.
FULL_MINUTES = {("rating", "en"): 37, ("polarity", "en"): 11, ("polarity", "zh"): 0.5}


@app.command("train")
def train(
    data: Path = typer.Option(..., "--data", help="Labelled reviews (CSV/TSV/JSONL/Parquet)."),
    text_col: str = typer.Option(..., "--text-col", help=TEXT_COL_HELP),
    label_col: str = typer.Option(..., "--label-col", help="1-5 ratings, or 0/1 for polarity."),
    task: str = typer.Option("rating", "--task", help="rating (1-5) or polarity (0/1)."),
    lang: str = typer.Option("auto", "--lang", help="en, zh or auto."),
    out: Path = typer.Option(..., "--out", help="Folder to save the model in."),
    backbone: str = typer.Option("auto", "--backbone",
                                 help="auto/minilm, a local HF model folder, or none (TF-IDF)."),
    epochs: float = typer.Option(2.0, "--epochs"),
    max_length: int = typer.Option(128, "--max-length"),
    batch_size: int = typer.Option(32, "--batch-size"),
    lr: float = typer.Option(5e-5, "--lr", help="Peak learning rate."),
    freeze_layers: int = typer.Option(0, "--freeze-layers",
                                      help="Freeze and cache this many lower layers (faster)."),
    tfidf_weight: str = typer.Option(
        "auto", "--tfidf-weight",
        help="Weight of the TF-IDF half in the average: auto (chosen on validation) or 0-1."),
    char_ngrams: bool = typer.Option(
        True, "--char-ngrams/--no-char-ngrams",
        help="English TF-IDF half: add character 2-5 grams to the words (slower to apply)."),
    class_weight: str = typer.Option(
        "none", "--class-weight",
        help="Loss weight per class: none, balanced or sqrt (rare ratings count more)."),
    threads: int = typer.Option(None, "--threads", help="torch CPU threads (default: cores)."),
    max_steps: int = typer.Option(None, "--max-steps", help="Stop fine-tuning after N steps."),
    device: str = typer.Option("auto", "--device", help="auto (GPU if any), cpu, cuda, …"),
    quick: bool = typer.Option(
        False, "--quick",
        help="No fine-tuning: an LR head over frozen MiniLM embeddings + TF-IDF (minutes "
             "instead of tens of minutes on a CPU; see evaluation/results/"
             "sentiment_first_run.md for what it gives up)."),
    max_head_train: int = typer.Option(
        None, "--max-head-train", help="--quick: fit the head on at most N texts (default all)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Fine-tune a sentiment model on a labelled file and save it (resumes if interrupted)."""
    from adpilot.profiling.sentiment import SentimentHeadModel, SentimentModel

    texts, labels, skipped = _read(data, text_col, label_col)
    try:
        weight: float | str = tfidf_weight if tfidf_weight == "auto" else float(tfidf_weight)
    except ValueError:
        raise typer.BadParameter(f"expected 'auto' or a number in [0, 1], got {tfidf_weight!r}",
                                 param_hint="--tfidf-weight") from None
    cls = SentimentHeadModel if quick else SentimentModel
    extra = {"max_head_train": max_head_train} if quick else {}
    model = cls(task, lang, **extra, backbone=backbone, epochs=epochs, max_length=max_length,
                           batch_size=batch_size, lr=lr, freeze_layers=freeze_layers,
                           tfidf_weight=weight, tfidf_char_ngrams=char_ngrams,
                           class_weight=None if class_weight == "none" else class_weight,
                           num_threads=threads, max_steps=max_steps, device=device,
                           checkpoint_dir=str(out.with_name(out.name + ".partial")))
    label = f"{'encoding texts for' if quick else 'fine-tuning'} {task} model"
    with progress_reporter() as report:
        model.fit(texts, labels, progress=lambda d, t: report(label, d, t))
    model.save(out)
    summary = {"model": str(out), "task": task, "lang": model.lang_, "n_train": model.n_train_,
               "fit_seconds": model.fit_seconds_, "tfidf_weight": model.weight_,
               "validation": model.metrics_, **skipped}
    if as_json:
        print_json(summary)
    else:
        console.print(f"saved {task}/{model.lang_} model to [bold]{out}[/] "
                      f"({model.n_train_:,} texts, {model.fit_seconds_:.0f} s)")
        for key, value in model.metrics_.items():
            if isinstance(value, dict):
                console.print(f"  validation {key[4:]}: accuracy {value['accuracy']:.3f}, "
                              f"macro-F1 {value['macro_f1']:.3f}")


def _load(model_dir: Path | None, task: str, lang: str, precision: str | None = None):
    from adpilot.artifacts import ModelStore
    from adpilot.config import get_settings
    from adpilot.profiling.sentiment import SentimentModel, load_default_model

    settings = get_settings()
    precision = precision or settings.sentiment_precision
    if model_dir is not None:
        return SentimentModel.load(model_dir, precision=precision)
    return load_default_model(task, lang, store=ModelStore.from_settings(settings),
                              precision=precision)


@app.command("eval")
def evaluate(
    model_dir: Path = typer.Option(..., "--model", help="A saved model folder."),
    data: Path = typer.Option(..., "--data"),
    text_col: str = typer.Option(..., "--text-col", help=TEXT_COL_HELP),
    label_col: str = typer.Option(..., "--label-col",
                                  help="1-5 ratings or 0/1; a polarity model maps 1-2→0, 4-5→1, "
                                       "drops 3."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Accuracy and macro-F1 of a saved model on a labelled file."""
    model = _load(model_dir, "rating", "en")
    texts, labels, skipped = _read(data, text_col, label_col)
    result = {"model": str(model_dir), "task": model.task, "lang": model.lang_,
              **model.score(texts, labels), **skipped}
    # rows with text whose label the task cannot use (missing, or a 3 for polarity)
    result["skipped_label"] = len(texts) - result["n"]
    if as_json:
        print_json(result)
        return
    table = Table(title=f"{model.task}/{model.lang_} model on {data.name}", show_header=False)
    for key in ("n", "accuracy", "macro_f1"):
        value = result[key]
        table.add_row(key, f"{value:,}" if key == "n" else f"{value:.3f}")
    console.print(table)


@app.command("predict")
def predict(
    model_dir: Path = typer.Option(None, "--model",
                                   help="A saved model folder (default: the cached default)."),
    task: str = typer.Option("rating", "--task", help="Default model to use without --model."),
    lang: str = typer.Option("en", "--lang", help="Default model to use without --model."),
    data: Path = typer.Option(None, "--data", help="A file of texts."),
    text_col: str = typer.Option("text", "--text-col", help=TEXT_COL_HELP),
    text: list[str] = typer.Option(None, "--text", help="A text to classify (repeatable)."),
    limit: int = typer.Option(None, "--limit", help="Only the first N texts of --data."),
    precision: str = typer.Option(None, "--precision",
                                  help="fp32 (exact), bf16 (about 2x faster on CPUs with "
                                       "AVX512-BF16/AMX) or auto; default: "
                                       "ADPILOT_SENTIMENT_PRECISION or fp32."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Predict labels and class probabilities for texts from a file or ``--text``."""
    if not data and not text:
        raise InputError("give --data FILE or --text TEXT")
    texts = list(text or [])
    skipped = {}
    if data:
        from_file, _, skipped = _read(data, text_col, None)
        texts += from_file
    texts = texts[:limit] if limit else texts
    model = _load(model_dir, task, lang, precision)
    proba = model.predict_proba(texts)
    labels = model.classes_[proba.argmax(1)]
    rows = [{"text": t, "label": int(y),
             "proba": {str(c): round(float(p), 4) for c, p in zip(model.classes_, ps, strict=True)}}
            for t, y, ps in zip(texts, labels, proba, strict=True)]
    if as_json:
        print_json({"task": model.task, "lang": model.lang_,
                    "classes": model.classes_.tolist(), "predictions": rows, **skipped})
        return
    table = Table("label", *(f"p({c})" for c in model.classes_), "text",
                  title=f"{model.task}/{model.lang_}")
    for row in rows:
        table.add_row(str(row["label"]), *(f"{v:.2f}" for v in row["proba"].values()),
                      row["text"][:80])
    console.print(table)


@app.command("train-defaults")
def train_defaults(
    full: bool = typer.Option(
        False, "--full",
        help="Fine-tune MiniLM for the English defaults (about 11 + 37 min on 2 quiet cores) "
             "instead of the quick models (a minute or two each); a fine-tuned model is used "
             "in preference to the quick one from then on."),
    device: str = typer.Option("auto", "--device"),
    threads: int = typer.Option(None, "--threads",
                                help="torch CPU threads; 1 is faster when the cores are busy."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Build the default models (English rating + polarity, Chinese polarity) into the cache.

    Quick by default; ``--full`` fine-tunes. Models already in the cache are kept (a fine-tuned
    one always); an interrupted fine-tune resumes from its last checkpoint.
    """
    from adpilot.artifacts import ModelStore
    from adpilot.config import get_settings
    from adpilot.datasets_fetch import DataSources
    from adpilot.profiling.sentiment import (
        DEFAULT_MODELS,
        QUICK_MODELS,
        cached_default_dir,
        default_model_dir,
        ensure_default_models,
    )

    settings = get_settings()
    store = ModelStore.from_settings(settings)
    labels = {}
    for task, lang in DEFAULT_MODELS:
        name, cached = f"{task}/{lang}", cached_default_dir(task, lang, store)
        if cached is not None and (not full or cached == default_model_dir(task, lang, store)):
            err_console.print(f"{name}: in the cache ({cached.name})")
        elif not full and (task, lang) in QUICK_MODELS:
            labels[name] = f"{name}: quick model, encoding reviews"
        elif DEFAULT_MODELS[(task, lang)]["params"].get("backbone") == "none":
            labels[name] = f"{name}: TF-IDF + LR"
        else:
            labels[name] = (f"{name}: fine-tuning (about {FULL_MINUTES[(task, lang)]} min on "
                            "2 quiet cores)")
            err_console.print(f"{labels[name]}; the bar shows the time left as it goes")
    with progress_reporter(labels=labels) as report:
        paths = ensure_default_models(store=store, sources=DataSources.from_settings(settings),
                                      progress=report, device=device, num_threads=threads,
                                      full=full)
    result = {f"{t}/{lg}": str(p) for (t, lg), p in paths.items()}
    if as_json:
        print_json(result)
    else:
        for name, path in result.items():
            console.print(f"{name}: {path}")
