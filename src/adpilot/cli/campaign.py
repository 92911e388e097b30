"""``adpilot campaign …``, ``adpilot events ingest`` and ``adpilot ope eval``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from adpilot.cli._common import console, model_store, print_json

app = typer.Typer(help="Campaigns: variants, allocation, decisions, reports.",
                  no_args_is_help=True)
events_app = typer.Typer(help="Feedback events (impressions, clicks, conversions).",
                         no_args_is_help=True)
ope_app = typer.Typer(help="Off-policy evaluation from logs with propensities.",
                      no_args_is_help=True)


def _campaigns(db: str | None):
    from adpilot.cli._common import open_store
    from adpilot.optimization.campaigns import Campaigns

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


@app.command("list")
def list_campaigns(
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Campaigns with their variants: channel, approved or not, guardrails passed or not."""
    import json

    from adpilot.data import columns as C

    camps = _campaigns(db)
    items = []
    for row in camps.list().to_dict("records"):
        variants = camps.variants(row[C.ID])
        items.append({**row, "created_at": row[C.CREATED_AT].isoformat(), "variants": [
            {"variant": v.variant, "channel": v.channel, "status": v.status,
             "approved": bool(v.approved),
             "passed": json.loads(v.copy or "{}").get("passed") if (v.copy or "").startswith("{")
             else None} for v in variants.itertuples()]})
    if as_json:
        print_json({"items": items})
        return
    table = Table("campaign", "name", "status", "variants", "approved", title="campaigns")
    for it in items:
        approved = [v["variant"] for v in it["variants"] if v["approved"]]
        table.add_row(it["id"], it["name"], it["status"], str(len(it["variants"])),
                      ", ".join(approved) or "—")
    console.print(table)


@app.command("approve")
def approve(
    campaign: str = typer.Option(..., "--campaign", help="Campaign id."),
    variant: str = typer.Option(None, "--variant", help="The variant to approve."),
    all_passed: bool = typer.Option(False, "--all-passed", help="Approve every active variant "
                                    "whose copy passed every guardrail."),
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Approve variants for sending: only approved variants are ever sent."""
    approved = _campaigns(db).approve(campaign, variant, all_passed=all_passed)
    if as_json:
        print_json({"campaign": campaign, "approved": approved})
        return
    console.print(f"approved: {', '.join(approved) or 'nothing new'}")


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


def _write_campaign_html(camps, r: dict, path: Path) -> None:
    import pandas as pd

    from adpilot.report.campaign_charts import allocation_chart, rates_chart
    from adpilot.report.html import Report, table_html

    doc = Report(f"Campaign {r['name']}", subtitle=f"{r['campaign']} · {r.get('events', 0):,} events")
    sec = doc.section("Variants · 变体")
    if r.get("variants"):
        sec.parts.append(table_html(pd.DataFrame(r["variants"]).round(4)))
        sec.parts.append(Report.text(f"SRM p = {r['srm_p_value']:.3f}; decision: {r['decision']}"))
        sec.parts.append(Report.figures(allocation_chart(r),
                                        rates_chart(camps.events(r["campaign"]), r["goal"])))
    else:
        sec.parts.append(Report.text("No feedback events yet.", note=True))
    doc.write(path)


@app.command("refresh")
def refresh(
    campaign: str = typer.Option(..., help="Campaign id."),
    retire_below: float = typer.Option(0.05, help="Retire live variants whose probability of "
                                       "being best is below this."),
    min_impressions: int = typer.Option(1000, help="Act only once every live variant has this "
                                        "many impressions."),
    keep: int = typer.Option(2, help="Never go below this many live variants."),
    product: Path = typer.Option(None, "--product", help="Product record (JSON): with "
                                 "--audience, write a new variant for each retired one."),
    audience: Path = typer.Option(None, "--audience", help="The campaign's audience (JSON)."),
    backend: str = typer.Option("llamacpp", "--backend", help="llamacpp | openai | transformers"),
    model: str = typer.Option(None, "--model", help="Model name or path for the backend."),
    base_url: str = typer.Option(None, "--base-url", envvar="ADPILOT_LLM_BASE_URL"),
    brand: Path = typer.Option(None, "--brand", help="Brand kit YAML (default: built-in)."),
    pairs_out: Path = typer.Option(None, "--pairs-out", help="Write the winner-vs-loser "
                                   "preference pairs here (JSONL) for scoring and tuning."),
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Close the loop: retire clear losers, keep the winner as a few-shot example for
    generation, export preference pairs, and (with --product/--audience) replace what was
    retired with new copy."""
    from adpilot.generation.examples import ExampleBank
    from adpilot.optimization.loop import close_loop

    camps = _campaigns(db)
    generator = prod = aud = None
    if product is not None or audience is not None:
        from adpilot.config import get_settings
        from adpilot.datasets_fetch import DataSources
        from adpilot.errors import ConfigError
        from adpilot.generation import CopyGenerator, load_brand
        from adpilot.usecases.llm import build_backend
        from adpilot.usecases.studio import ensure_copy_models, read_audience, read_product

        if product is None or audience is None:
            raise ConfigError("--product and --audience go together")
        prod, aud = read_product(product), read_audience(audience)
        generator = CopyGenerator(build_backend(backend, model, base_url,
                                                models_dir=get_settings().models_dir,
                                                parallel=get_settings().llm_parallel),
                                  brand=load_brand(brand), examples=ExampleBank(camps.store),
                                  cache=get_settings().llm_cache_dir,
                                  store=model_store())
        ensure_copy_models(generator.store, ["en", "zh"], parts=("complaint",),  # the guardrail's models
                           sources=DataSources.from_settings(get_settings()))
    try:
        result = close_loop(camps, campaign, retire_below=retire_below,
                            min_impressions=min_impressions, keep=keep,
                            bank=ExampleBank(camps.store), generator=generator,
                            product=prod, audience=aud)
    finally:
        if generator is not None:
            generator.backend.close()
    if pairs_out is not None:
        pairs_out.parent.mkdir(parents=True, exist_ok=True)
        result.pairs.to_json(pairs_out, orient="records", lines=True, force_ascii=False)
    payload = result.as_dict() | ({"pairs_file": str(pairs_out)} if pairs_out else {})
    if as_json:
        print_json(payload)
        return
    console.print(f"winner: {result.winner or '—'} · retired: {', '.join(result.retired) or '—'}"
                  f" · added: {', '.join(result.added) or '—'} · {result.reason}")


@app.command("report")
def report(
    campaign: str = typer.Option(..., help="Campaign id."),
    html: Path = typer.Option(None, "--html", help="Also write an HTML report with plots of "
                              "allocation and rates over time."),
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Per-variant rates with intervals, P(best), always-valid tests, SRM, stopping rule."""
    camps = _campaigns(db)
    r = camps.report(campaign)
    if html is not None:
        _write_campaign_html(camps, r, html)
        r = {**r, "html": str(html)}
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

        from adpilot.data.csv_safe import write_csv

        write_csv(pd.concat([raw.parse_errors, result.quarantine]), quarantine)
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
