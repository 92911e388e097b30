"""The delivery end of ``adpilot run``: the campaign the run planned, stored with the copy it
wrote as its variants, and a dry run of its delivery into the ``file`` outbox.

Variants are the distinct copies of the run's plan, one per (language, segment, product); each
records whether it passed every guardrail. With ``approve`` those that passed are approved. The
audience is the customers the delivery plan contacts (written to ``audience.csv``). The dry run
decides every message's outcome now (consent, caps, quiet hours in the customer's zone, …),
writes ``outbox/dry-run/plan.csv`` and a preview of each message due, and records nothing in the
send ledger: ``adpilot send --campaign ID --audience <out>/audience.csv`` sends them.
"""

from __future__ import annotations

import pandas as pd

from adpilot.data import columns as C
from adpilot.data.csv_safe import write_csv

RUN_CAMPAIGN = "adpilot run"


def plan_variants(plan: pd.DataFrame) -> dict[str, dict]:
    """variant name → copy of each distinct (lang, segment, product) copy of a campaign plan.

    The segment's own copy is taken from a row without a personal opener where there is one
    (the opener is about one customer). The plan's ``text`` joins the copy fields with line
    breaks in field order, and an e-mail subject is a single line, so it splits back.
    """
    from adpilot.generation.violation import parse_violations  # the plan's "; "-joined cell

    out: dict[str, dict] = {}
    order = plan.assign(_own=plan["personalised"].astype(bool)).sort_values("_own", kind="stable")
    for (lang, segment, product, channel), rows in order.groupby(
            ["lang", C.SEGMENT, C.PRODUCT_ID, C.CHANNEL], sort=True):
        row = rows.iloc[0]
        text = str(row[C.TEXT])
        copy: dict = {"lang": lang, "segment": str(segment), "product_id": str(product),
                      "passed": bool(row["passed"]),
                      "violations": [str(v) for v in parse_violations(row.get("violations"))],
                      "source": RUN_CAMPAIGN}
        if channel in ("email", "push"):
            head, _, body = text.partition("\n")
            copy |= {"subject" if channel == "email" else "title": head, "body": body.strip()}
        else:
            copy["text"] = text
        out[f"{segment}-{product}-{lang}-{channel}"] = copy
    return out


def store_run_campaign(store, plan: pd.DataFrame, *, approve: bool) -> tuple[str, list[str]]:
    """The run's campaign (reused when a campaign of that name has the same variants: a rerun
    into the same store adds none) and the variants approved now."""
    from adpilot.optimization.campaigns import Campaigns

    copies = plan_variants(plan)
    camps = Campaigns(store)
    listed = camps.list()
    cid = None
    for existing in listed.loc[listed["name"] == RUN_CAMPAIGN, C.ID]:
        if set(camps.variants(existing)[C.VARIANT]) == set(copies):
            cid = existing
            break
    if cid is None:
        kinds = sorted(set(plan[C.CHANNEL]))
        cid = camps.create(RUN_CAMPAIGN, list(copies), channel=kinds[0] if len(kinds) == 1 else None,
                           policy="fixed", copies=copies, audience={"source": "adpilot run"})
    approved = camps.approve(cid, all_passed=True) if approve and any(
        c["passed"] for c in copies.values()) else []
    return cid, approved


def step_campaign_delivery(ctx) -> None:
    """Pipeline step: store the planned campaign, then dry-run its delivery (nothing sent)."""
    from adpilot.delivery.campaign_send import send_campaign
    from adpilot.report import Report
    from adpilot.report.html import table_html

    sec = ctx.report.section("Delivery (dry run) · 投放预演")
    plan = ctx.copy_plan
    if plan is None or plan.empty:
        sec.parts.append(Report.text("Skipped: no campaign copy was written (the copy step needs "
                                     "an LLM backend). 未生成文案，跳过。", note=True))
        return
    cid, approved = store_run_campaign(ctx.store, plan, approve=ctx.approve)
    # the delivery plan's contact decision (customers it did not rank stay out)
    contacted = plan[plan["contact"].fillna(False).astype(bool)] if "contact" in plan else plan
    audience = ctx.out_dir / "audience.csv"
    write_csv(pd.DataFrame({"customer_id": sorted(set(contacted[C.USER_ID]))}), audience)
    ctx.outputs["audience"] = str(audience)
    kinds = sorted(set(plan[C.CHANNEL]) & {"email", "sms", "push"}) or ["email"]
    result = send_campaign(ctx.store, cid, None, audience=str(audience), kind=kinds[0],
                           dry_run=True, outbox=ctx.out_dir / "outbox")
    doc = result.to_dict() | {"approved": approved}
    ctx.delivery = doc
    ctx.outputs["outbox"] = doc.get("outbox", "")
    sec.parts.append(Report.kpis({"campaign": cid, "messages planned": doc["planned"],
                                  "would send": doc["would_send"],
                                  "variants approved": len(approved)}))
    rows = ([{"outcome": "would send · 将发送", "reason": "", "messages": doc["would_send"]}]
            + [{"outcome": f"{k} · {'跳过' if k == 'skipped' else '延后'}", "reason": r, "messages": n}
               for k in ("skipped", "deferred") for r, n in doc[k].items()])
    sec.parts.append(table_html(pd.DataFrame(rows)))
    sec.parts.append(Report.text(
        "A dry run: nothing was sent and the send ledger is unchanged. Variants are sent only once "
        "approved (adpilot run --approve, or adpilot campaign approve). To send: adpilot send "
        f"--campaign {cid} --audience {audience.name} --provider smtp. "
        "预演：未发送任何消息；只有审核通过的文案才会发送。", note=True))
