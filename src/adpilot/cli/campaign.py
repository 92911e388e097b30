"""``adpilot campaign …``, ``adpilot events ingest`` and ``adpilot ope eval``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from adpilot.cli._common import console, print_json

app = typer.Typer(help="Campaigns: variants, allocation, decisions, reports.",
                  no_args_is_help=True)
events_app = typer.Typer(help="Feedback events (impressions, clicks, conversions).",
                         no_args_is_help=True)
ope_app = typer.Typer(help="Off-policy evaluation from logs with propensities.",
                      no_args_is_help=True)


def _campaigns(db: str | None):
    from adpilot.optimization.campaigns import Campaigns
    from adpilot.store import open_store

    return Campaigns(open_store(db))


@app.command("create")
def create(
    name: str = typer.Option(..., help="Campaign name."),
    variants: str = typer.Option(..., help="Comma-separated variant names, e.g. A,B,C."),
    channel: str = typer.Option(None, help="email | sms | push | social | search_ad"),
    policy: str = typer.Option("thompson", help="thompson | fixed"),
    goal: str = typer.Option("click", help="click | conversion"),
    floor: float = typer.Option(0.05, help="Exploration floor (Thompson)."),
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create a campaign; prints its id."""
    cid = _campaigns(db).create(name, [v.strip() for v in variants.split(",") if v.strip()],
                                channel=channel, policy=policy, goal=goal, floor=floor)
    print_json({"campaign": cid}) if as_json else console.print(cid)


@app.command("decide")
def decide(
    campaign: str = typer.Option(..., help="Campaign id."),
    user: str = typer.Option(..., help="User id."),
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Choose a variant for a user (logged with its propensity)."""
    c = _campaigns(db)
    d = c.decide(user, campaign)
    c.flush()
    print_json(d.as_dict()) if as_json else console.print(
        f"{d.variant} on {d.channel or '-'} (p = {d.propensity:.3f})")


@app.command("report")
def report(
    campaign: str = typer.Option(..., help="Campaign id."),
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Per-variant rates with intervals, P(best), always-valid tests, SRM, stopping rule."""
    r = _campaigns(db).report(campaign)
    if as_json:
        print_json(r)
        return
    table = Table("variant", "impressions", "rate", "95% CI", "P(best)", "exp. loss",
                  "vs control p", title=f"{r['name']} ({r.get('events', 0)} events)")
    for v in r.get("variants", []):
        table.add_row(str(v["variant"]), str(v["impressions"]), f"{v['rate']:.4f}",
                      f"[{v['ci_low']:.4f}, {v['ci_high']:.4f}]", f"{v['p_best']:.3f}",
                      f"{v['expected_loss']:.5f}", f"{v['vs_control_p']:.3f}")
    console.print(table)
    if "decision" in r:
        console.print(f"SRM p = {r['srm_p_value']:.3f}; decision: {r['decision']}")


@events_app.command("ingest")
def ingest_events(
    path: Path = typer.Argument(..., help="Events file (CSV/TSV/JSONL/Parquet)."),
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB"),
    quarantine: Path = typer.Option(None, "--quarantine", help="Where to write rejected rows."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Ingest feedback events: deduplicated by event id, unknown campaigns rejected."""
    from adpilot.data.readers import read_table

    raw = read_table(path)
    result = _campaigns(db).ingest_events(raw.frame)
    summary = result.summary()
    summary["read"] += len(raw.parse_errors)
    summary["quarantined"] += len(raw.parse_errors)
    if quarantine and (len(result.quarantine) or len(raw.parse_errors)):
        import pandas as pd

        pd.concat([raw.parse_errors, result.quarantine]).to_csv(quarantine, index=False)
        summary["quarantine_file"] = str(quarantine)
    print_json(summary) if as_json else console.print(summary)


@ope_app.command("eval")
def ope_eval(
    logs: Path = typer.Option(..., "--logs", help="Logged decisions with rewards."),
    action_col: str = typer.Option(..., "--action-col"),
    reward_col: str = typer.Option(..., "--reward-col"),
    propensity_col: str = typer.Option(..., "--propensity-col"),
    position_col: str = typer.Option(None, "--position-col"),
    policy: str = typer.Option("uniform", "--policy",
                               help="uniform, or a CSV with the action (and position) column "
                                    "and `probability`."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Estimate a target policy's value from logs: IPW, self-normalised IPW, doubly robust."""
    from adpilot.data.readers import read_table
    from adpilot.optimization.ope import evaluate_logs

    frame = read_table(logs).frame
    target = policy if policy == "uniform" else read_table(policy).frame.assign(
        probability=lambda d: d["probability"].astype(float))
    r = evaluate_logs(frame, action_col=action_col, reward_col=reward_col,
                      propensity_col=propensity_col, position_col=position_col, target=target)
    if as_json:
        print_json(r)
        return
    table = Table("estimator", "value", "95% CI", title=f"{r['n']:,} logged rows")
    for name, e in r["estimates"].items():
        table.add_row(name, f"{e['value']:.5f}", f"[{e['ci_low']:.5f}, {e['ci_high']:.5f}]")
    console.print(table)
