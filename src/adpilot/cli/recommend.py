"""``adpilot recommend …``: evaluate product recommenders on interaction logs."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from adpilot.cli._common import console, err_console, print_json

app = typer.Typer(help="Product recommendations.", no_args_is_help=True)


@app.command("eval")
def evaluate(
    interactions: Path = typer.Option(..., "--interactions", help="Purchases/clicks file."),
    user_col: str = typer.Option(..., "--user-col"),
    item_col: str = typer.Option(..., "--item-col"),
    time_col: str = typer.Option(None, "--time-col", help="Needed for --split time."),
    split: str = typer.Option("time", help="time | random"),
    k: int = typer.Option(10, "--k"),
    text_col: str = typer.Option(None, "--text-col",
                                 help="Item text column: adds the content-similarity model."),
    include_seen: bool = typer.Option(False, "--include-seen",
                                      help="Count re-purchases of items bought in training."),
    seed: int = typer.Option(0),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Fit popularity, item co-occurrence, ALS (and content) models; compare on one split."""
    from adpilot.data.readers import read_table
    from adpilot.targeting.recommend import evaluate_recommenders

    with err_console.status("evaluating recommenders …"):
        frame = read_table(interactions).frame
        if item_col in frame and "quantity" in {c.lower() for c in frame.columns}:
            qty = next(c for c in frame.columns if c.lower() == "quantity")
            frame = frame[frame[qty].astype(float) > 0]  # returns are not interest
        texts = (frame.dropna(subset=[text_col]).drop_duplicates(item_col)
                 .set_index(item_col)[text_col].rename(index=str) if text_col else None)
        result = evaluate_recommenders(frame, user_col=user_col, item_col=item_col,
                                       time_col=time_col, split=split, k=k, item_texts=texts,
                                       exclude_seen=not include_seen, seed=seed)
    if as_json:
        print_json(result)
        return
    table = Table("model", f"NDCG@{k}", f"P@{k}", f"R@{k}", "coverage",
                  title=f"{result['users_evaluated']:,} users, {split} split")
    for name, m in result["models"].items():
        table.add_row(name + (" *" if name == result["model"] else ""), f"{m['ndcg_at_k']:.4f}",
                      f"{m['precision_at_k']:.4f}", f"{m['recall_at_k']:.4f}", f"{m['coverage']:.3f}")
    console.print(table)
