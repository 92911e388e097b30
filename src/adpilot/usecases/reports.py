"""Every campaign's report from one aggregate query (the campaign reports the API and the
dashboard show).

``CampaignService.report`` reads a campaign's events row by row; for the report of every
campaign that is a read of the whole events table per request. Here the database counts
events per (campaign, variant, type, day) and the same statistics (:func:`variant_report`,
:func:`stopping_decision`) run on those counts; the result equals ``report`` per campaign
(tests/test_api_hardening.py checks it). :class:`CampaignReports` also keeps each report
while the campaign's counts stay the same."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from adpilot.data import columns as C
from adpilot.optimization.stats import stopping_decision, variant_report
from adpilot.store.sql import TABLES, Store


def event_counts(store: Store) -> pd.DataFrame:
    """Events per (campaign, variant, type, day), counted by the database (``day`` is the
    date of the event time as ``YYYY-MM-DD``, None without a time)."""
    ev = TABLES["events"]
    day = func.date(ev.c.time).label("day")  # SQLite: text; PostgreSQL: a date
    q = (select(ev.c.campaign, ev.c.variant, ev.c.type, day, func.count().label("n"))
         .group_by(ev.c.campaign, ev.c.variant, ev.c.type, day))
    with store.engine.connect() as conn:
        rows = pd.DataFrame(conn.execute(q).all(),
                            columns=[C.CAMPAIGN, C.VARIANT, C.EVENT_TYPE, "day", "n"])
    rows["day"] = [None if d is None else str(d)[:10] for d in rows["day"]]
    return rows


def report_from_counts(camp: dict, counts: pd.DataFrame) -> dict:
    """One campaign's report (the shape of ``Campaigns.report``) from its rows of
    :func:`event_counts`; ``camp`` has id, name, goal and status."""
    total = int(counts["n"].sum()) if len(counts) else 0
    if not total:
        return {"campaign": camp[C.ID], "name": camp["name"], "events": 0}
    known = counts.dropna(subset=[C.VARIANT, C.EVENT_TYPE])
    per = known.groupby([C.VARIANT, C.EVENT_TYPE])["n"].sum()
    # variant_report counts an events frame; two columns rebuilt from the counts, no event rows
    frame = pd.DataFrame({C.VARIANT: np.repeat(per.index.get_level_values(0).to_numpy(), per),
                          C.EVENT_TYPE: np.repeat(per.index.get_level_values(1).to_numpy(), per)})
    rep = variant_report(frame, goal=camp["goal"])
    imps = known[(known[C.EVENT_TYPE] == "impression") & known["day"].notna()]
    daily = imps.pivot_table(index="day", columns=C.VARIANT, values="n", aggfunc="sum",
                             fill_value=0).sort_index()
    return {"campaign": camp[C.ID], "name": camp["name"], "goal": camp["goal"],
            "status": camp["status"], "events": total,
            "variants": rep.reset_index().rename(columns={"index": C.VARIANT}).to_dict("records"),
            "srm_p_value": rep.attrs["srm_p_value"], "decision": stopping_decision(rep),
            "allocation_by_day": {str(k): {v: int(n) for v, n in row.items()}
                                  for k, row in daily.to_dict("index").items()}}


class CampaignReports:
    """The report of every campaign, from one aggregate query per call. A campaign's report
    is a pure function of its row and its counts, so it is kept and reused while both stay
    the same (exact: any new, changed or removed event changes the counts); only campaigns
    whose counts moved pay for the statistics again."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._memo: dict[str, tuple[tuple, dict]] = {}
        self._lock = threading.Lock()

    def __call__(self, campaigns: pd.DataFrame) -> list[dict]:
        """Reports for ``campaigns`` (id, name, goal, status), in its order."""
        counts = event_counts(self.store)
        by_campaign = dict(tuple(counts.groupby(C.CAMPAIGN))) if len(counts) else {}
        empty = counts.iloc[0:0]
        out, memo = [], {}
        for camp in campaigns.to_dict("records"):
            rows = by_campaign.get(camp[C.ID], empty)
            key = (camp["name"], camp["goal"], camp["status"],
                   tuple(rows[[C.VARIANT, C.EVENT_TYPE, "day", "n"]].itertuples(index=False,
                                                                                name=None)))
            with self._lock:
                hit = self._memo.get(camp[C.ID])
            report = hit[1] if hit and hit[0] == key else report_from_counts(camp, rows)
            memo[camp[C.ID]] = (key, report)
            out.append(report)
        with self._lock:
            self._memo = memo  # campaigns that are gone are forgotten
        return out


def campaign_reports(store: Store, campaigns: pd.DataFrame) -> list[dict]:
    """The report of every campaign in ``campaigns`` (id, name, goal, status), in its order."""
    return CampaignReports(store)(campaigns)
