"""``adpilot uplift …``: evaluate uplift targeting on randomised or logged campaign data."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from adpilot.cli._common import console, err_console, print_json

app = typer.Typer(help="Uplift targeting: who should get which message.", no_args_is_help=True)


def _csv_list(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@app.command("eval")
def evaluate(
    data: Path = typer.Option(..., "--data", help="CSV/TSV/JSONL/Parquet, one row per customer."),
    treatment_col: str = typer.Option(..., "--treatment-col", help="Arm each customer got."),
    control: str = typer.Option(..., "--control", help="The control arm's value."),
    outcome: str = typer.Option(..., "--outcome", help="Outcome column (0/1 or amount)."),
    budget: float = typer.Option(0.5, help="Fraction of customers that may be contacted."),
    learner: str = typer.Option("dr", help="t | x | dr"),
    features: str = typer.Option(None, help="Comma-separated feature columns (default: all "
                                            "others except known outcome columns)."),
    exclude: str = typer.Option(None, help="Comma-separated columns never to use as features."),
    propensity_col: str = typer.Option(None, "--propensity-col",
                                       help="Logging propensity (default: arm shares, an RCT)."),
    test_size: float = typer.Option(0.3, help="Held-out fraction."),
    seed: int = typer.Option(0),
    plot: Path = typer.Option(None, help="Write the Qini curve as SVG here."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Fit on a training split, report policy values with intervals on the held-out split."""
    from adpilot.data.readers import read_table
    from adpilot.targeting.evaluate import evaluate_uplift

    with err_console.status("fitting uplift models …"):
        frame = read_table(data).frame
        ev = evaluate_uplift(frame, treatment_col=treatment_col, control=control, outcome=outcome,
                             features=_csv_list(features), exclude=_csv_list(exclude),
                             budget=budget, learner=learner, test_size=test_size,
                             propensity_col=propensity_col, seed=seed, path=str(data))
    if plot:
        from adpilot.report.charts import qini_chart

        plot.write_text(qini_chart({learner: ev.curves["qini"]}, title=f"Qini: {outcome}"),
                        encoding="utf-8")
    r = ev.result
    if as_json:
        print_json(r)
        return
    table = Table("policy", "value", "95% CI", title=f"{outcome} per customer (held out)")

    def row(name: str, est: dict) -> None:
        table.add_row(name, f"{est['value']:.4f}", f"[{est['ci_low']:.4f}, {est['ci_high']:.4f}]")

    row("learned policy", r["policy"])
    for arm, est in r["arms"].items():
        row(f"everyone: {arm}", est)
    row(f"best-scored {r['budget']['fraction']:.0%}", r["budget"]["policy_value"])
    row(f"random {r['budget']['fraction']:.0%}", r["budget"]["random_value"])
    console.print(table)
    lift = r["budget"]["relative_lift"]
    inc = r["budget"]["incremental_lift"]
    console.print(f"best-scored vs random: {lift['value']:+.1%} total "
                  f"[{lift['ci_low']:+.1%}, {lift['ci_high']:+.1%}], {inc['value']:+.1%} incremental "
                  f"[{inc['ci_low']:+.1%}, {inc['ci_high']:+.1%}]; Qini {r['qini']:.5f}, "
                  f"AUUC {r['auuc']:.5f} (area over random ÷ n²); ÷ the perfect model's "
                  f"(scikit-uplift): Qini {r['qini_auc_score']:.4f}, "
                  f"AUUC {r['uplift_auc_score']:.4f}")
