"""Campaigns in the store: variants, an allocation policy whose state persists, a decision
log with propensities, and feedback events that update the policy.

A decision is computed in process from the in-memory policy (microseconds) and logged in
batches; the policy state is rebuilt from the stored events, so ingesting the same batch twice
changes nothing and a restart loses nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import select, update

from adpilot.data import columns as C
from adpilot.errors import ConfigError, NotFoundError
from adpilot.optimization.campaign_tables import (
    CAMPAIGNS,
    DECISIONS,
    GOALS,
    VARIANTS,
    add_approval_columns,
    now,
)
from adpilot.optimization.event_rows import EventIngest, store_events
from adpilot.optimization.policies import (
    FixedSplit,
    Policy,
    ThompsonSampling,
    policy_from_state,
)
from adpilot.store.sql import Store, metadata

# the tables and the event report are defined beside this module and importable from here
__all__ = ["CAMPAIGNS", "DECISIONS", "GOALS", "VARIANTS", "Campaigns", "Decision", "EventIngest"]


@dataclass
class Decision:
    decision_id: str
    campaign_id: str
    user_id: str
    variant: str
    channel: str | None
    propensity: float
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("decision_id", "campaign_id", "user_id", "variant",
                                              "channel", "propensity")}


class Campaigns:
    """Campaign operations over a :class:`~adpilot.store.Store`."""

    def __init__(self, store: Store, *, seed: int | None = None, log_batch: int = 500) -> None:
        self.store = store
        metadata.create_all(store.engine, tables=[CAMPAIGNS, VARIANTS, DECISIONS])
        add_approval_columns(store)
        self._rng = np.random.default_rng(seed)
        self._policies: dict[str, Policy] = {}
        self._channels: dict[str, dict[str, str | None]] = {}
        self._pending: list[dict] = []
        self.log_batch = log_batch

    # --- set-up ---------------------------------------------------------------------------
    def create(self, name: str, variants: list[str], *, channel: str | None = None,
               policy: str = "thompson", goal: str = "click", floor: float = 0.05,
               audience: dict | None = None, schedule: dict | None = None,
               attribution_hours: int = 72, copies: dict[str, dict] | None = None,
               approved: bool | Collection[str] = False) -> str:
        """Create a campaign; ``approved``: True approves every variant, or the names given."""
        if goal not in GOALS:
            raise ConfigError(f"goal must be one of {', '.join(GOALS)}, got {goal!r}")
        pol = {"thompson": lambda: ThompsonSampling(variants, floor=floor),
               "fixed": lambda: FixedSplit(variants)}.get(policy)
        if pol is None:
            raise ConfigError(f"policy must be thompson or fixed, got {policy!r}")
        state = pol().state()
        from adpilot.optimization.naming import display_name, unique_id

        name = display_name(name)  # no NUL, control or bidi characters (issue 17)
        if not name:
            raise ConfigError("a campaign name needs at least one visible character")
        cid = unique_id(name)  # a slug: one URL segment, readable in any script
        with self.store.engine.begin() as conn:
            conn.execute(CAMPAIGNS.insert().values(
                id=cid, name=name, goal=goal, audience=json.dumps(audience or {}),
                schedule=json.dumps(schedule or {}), status="active",
                attribution_hours=attribution_hours, policy_state=json.dumps(state),
                created_at=now()))
            for v in variants:
                ok = approved if isinstance(approved, bool) else v in approved
                conn.execute(VARIANTS.insert().values(
                    campaign_id=cid, variant=v, channel=channel,
                    copy=json.dumps((copies or {}).get(v, {}), ensure_ascii=False),
                    status="active", created_at=now(), approved=ok,
                    approved_at=now() if ok else None))
        return cid

    def add_variant(self, campaign_id: str, variant: str, *, channel: str | None = None,
                    copy: dict | None = None, approved: bool = False) -> None:
        """Add a variant to a running campaign (it starts from the prior: cold start)."""
        policy = self.policy(campaign_id)
        policy.add_arm(variant)
        with self.store.engine.begin() as conn:
            conn.execute(VARIANTS.insert().values(
                campaign_id=campaign_id, variant=variant, channel=channel,
                copy=json.dumps(copy or {}, ensure_ascii=False), status="active",
                created_at=now(), approved=approved, approved_at=now() if approved else None))
            conn.execute(update(CAMPAIGNS).where(CAMPAIGNS.c.id == campaign_id).values(
                policy_state=json.dumps(policy.state())))
        self._channels.pop(campaign_id, None)

    def retire_variant(self, campaign_id: str, variant: str) -> None:
        """Stop showing a variant (a clear loser): the policy drops its arm; its events stay
        in the log and in the reports."""
        policy = self.policy(campaign_id)
        policy.remove_arm(variant)
        with self.store.engine.begin() as conn:
            conn.execute(update(VARIANTS).where(VARIANTS.c.campaign_id == campaign_id,
                                                VARIANTS.c.variant == variant)
                         .values(status="retired"))
            conn.execute(update(CAMPAIGNS).where(CAMPAIGNS.c.id == campaign_id).values(
                policy_state=json.dumps(policy.state())))
        self.invalidate(campaign_id)

    def set_status(self, campaign_id: str, status: str) -> None:
        if status not in ("active", "paused"):
            raise ConfigError(f"status must be active or paused, got {status!r}")
        self.get(campaign_id)
        with self.store.engine.begin() as conn:
            conn.execute(update(CAMPAIGNS).where(CAMPAIGNS.c.id == campaign_id).values(
                status=status))

    def get(self, campaign_id: str) -> dict:
        """The stored campaign row; :class:`NotFoundError` if there is none."""
        with self.store.engine.connect() as conn:
            row = conn.execute(select(CAMPAIGNS).where(CAMPAIGNS.c.id == campaign_id)).first()
        if row is None:
            raise NotFoundError(f"unknown campaign {campaign_id!r}")
        return dict(row._mapping)

    def approve(self, campaign_id: str, variant: str | None = None, *,
                all_passed: bool = False) -> list[str]:
        """Approve ``variant``, or (``all_passed``) every active variant whose copy records that it
        passed every guardrail (``"passed": true``); returns the names approved now."""
        if (variant is None) == (not all_passed):
            raise ConfigError("approve one variant by name or all that passed, not both or neither")
        rows = self.variants(self.get(campaign_id)[C.ID])
        if variant is not None:
            if variant not in set(rows[C.VARIANT]):
                raise NotFoundError(f"campaign {campaign_id!r} has no variant {variant!r}; it has "
                                    f"{', '.join(map(str, rows[C.VARIANT])) or 'none'}")
            names = [variant]
        else:
            names = [r.variant for r in rows.itertuples()
                     if r.status == "active" and json.loads(r.copy or "{}").get("passed") is True]
        todo = [n for n in names if not bool(rows.set_index(C.VARIANT).at[n, "approved"])]
        if todo:
            with self.store.engine.begin() as conn:
                conn.execute(update(VARIANTS).where(VARIANTS.c.campaign_id == campaign_id,
                                                    VARIANTS.c.variant.in_(todo))
                             .values(approved=True, approved_at=now()))
        return todo

    def invalidate(self, campaign_id: str) -> None:
        """Drop cached policy and channels so the next decision reloads the stored state
        (another process or instance may have changed status, variants or posterior)."""
        self._policies.pop(campaign_id, None)
        self._channels.pop(campaign_id, None)

    def list(self) -> pd.DataFrame:
        with self.store.engine.connect() as conn:
            return pd.read_sql(select(CAMPAIGNS.c.id, CAMPAIGNS.c.name, CAMPAIGNS.c.goal,
                                      CAMPAIGNS.c.status, CAMPAIGNS.c.created_at), conn)

    def variants(self, campaign_id: str) -> pd.DataFrame:
        with self.store.engine.connect() as conn:
            return pd.read_sql(select(VARIANTS).where(VARIANTS.c.campaign_id == campaign_id), conn)

    # --- decisions ------------------------------------------------------------------------
    def policy(self, campaign_id: str) -> Policy:
        if campaign_id not in self._policies:
            self._policies[campaign_id] = policy_from_state(
                json.loads(self.get(campaign_id)["policy_state"]))
        return self._policies[campaign_id]

    def load_policy(self, campaign_id: str) -> Policy:
        """The stored policy, read now (the cache is left alone), ready for :meth:`use_policy`;
        a Thompson policy's choice probabilities are computed here, not on the next decision."""
        policy = policy_from_state(json.loads(self.get(campaign_id)["policy_state"]))
        if isinstance(policy, ThompsonSampling):
            policy.probabilities()
        return policy

    def use_policy(self, campaign_id: str, policy: Policy) -> None:
        """Answer this campaign's decisions with ``policy`` (e.g. one refreshed after ingest)."""
        self._policies[campaign_id] = policy

    def decide(self, user_id: str, campaign_id: str) -> Decision:
        """Choose a variant for ``user_id``; returns it with its propensity (logged)."""
        started = time.perf_counter()
        policy = self.policy(campaign_id)
        if campaign_id not in self._channels:
            v = self.variants(campaign_id)
            if self.get(campaign_id)["status"] != "active":
                raise ConfigError(f"campaign {campaign_id!r} is paused")
            self._channels[campaign_id] = dict(zip(v[C.VARIANT], v[C.CHANNEL], strict=True))
        arm, p = policy.choose(self._rng)
        d = Decision(uuid.uuid4().hex, campaign_id, str(user_id), arm,
                     self._channels[campaign_id].get(arm), p)
        self._pending.append({**d.as_dict(), "time": now()})
        if len(self._pending) >= self.log_batch:
            self.flush()
        d.seconds = time.perf_counter() - started
        return d

    def flush(self) -> None:
        """Write buffered decisions to the decision log."""
        self.write_decisions(self.take_pending())

    def take_pending(self) -> list[dict]:
        """Hand over the buffered decisions (the buffer starts empty again)."""
        pending, self._pending = self._pending, []
        return pending

    def write_decisions(self, rows: list[dict]) -> None:
        """Append decisions to the decision log in one transaction."""
        if rows:
            with self.store.engine.begin() as conn:
                conn.execute(DECISIONS.insert(), rows)

    def is_warm(self, campaign_id: str) -> bool:
        """Whether a decision for this campaign is answered from memory (no database read)."""
        return campaign_id in self._policies and campaign_id in self._channels

    def decisions(self, campaign_id: str) -> pd.DataFrame:
        self.flush()
        with self.store.engine.connect() as conn:
            return pd.read_sql(select(DECISIONS).where(DECISIONS.c.campaign_id == campaign_id),
                               conn)

    # --- feedback -------------------------------------------------------------------------
    def ingest_events(self, frame: pd.DataFrame) -> EventIngest:
        """Validate, deduplicate and store feedback events, then refresh the policies.

        Rejected (quarantined, with a reason): invalid rows, duplicate event ids in the batch,
        unknown campaigns or variants, and — for campaigns that log decisions — events of users
        with no decision, or outside the attribution window after it.
        """
        return self.ingest_events_rows(frame)[0]

    def ingest_events_rows(self, frame: pd.DataFrame, batch: np.ndarray | None = None
                           ) -> tuple[EventIngest, np.ndarray, np.ndarray]:
        """:meth:`ingest_events` of several batches merged into one call, with the outcome of
        each input row in order (``"new"``, ``"stored"``: its id is already stored, or
        ``"quarantined"``) and the input row of each quarantine entry, so the caller can split
        the counts back per batch.

        ``batch`` numbers each row's batch (ascending; default: one batch). The result is what
        processing the batches one after another would give: a repeated id is a duplicate
        within its batch; a row whose id an earlier batch stored counts as already stored; a
        row whose id an earlier batch only quarantined is judged on its own. Quarantine row
        numbers count within each batch."""
        self.flush()
        report, outcome, rows, new = store_events(self.store, frame, batch)
        self._add_to_policies(new)
        return report, outcome, rows

    def _add_to_policies(self, new: pd.DataFrame) -> None:
        """Add the newly stored events' counts to each Thompson policy (O(batch), not a
        recount of the campaign's history; ``refresh_policies`` recounts from scratch)."""
        for cid, part in new.groupby(C.CAMPAIGN):
            camp = self.get(cid)
            state = json.loads(camp["policy_state"])
            if state["kind"] != "thompson":
                continue
            counts = pd.crosstab(part[C.VARIANT], part[C.EVENT_TYPE])
            imp = counts.get("impression", pd.Series(dtype=float))
            succ = counts.get(camp["goal"], pd.Series(dtype=float))
            totals = state.get("counts") or {"impressions": [0.0] * len(state["arms"]),
                                             "successes": [0.0] * len(state["arms"])}
            for i, arm in enumerate(state["arms"]):
                totals["impressions"][i] += float(imp.get(arm, 0))
                totals["successes"][i] += float(succ.get(arm, 0))
            self._save_thompson(cid, state, totals)

    def _save_thompson(self, cid: str, state: dict, totals: dict) -> None:
        state["counts"] = totals
        state["alpha"] = [1.0 + s for s in totals["successes"]]
        state["beta"] = [1.0 + max(0.0, n - s)
                         for n, s in zip(totals["impressions"], totals["successes"], strict=True)]
        with self.store.engine.begin() as conn:
            conn.execute(update(CAMPAIGNS).where(CAMPAIGNS.c.id == cid).values(
                policy_state=json.dumps(state)))
        self._policies[cid] = policy_from_state(state)

    def events(self, campaign_id: str) -> pd.DataFrame:
        from adpilot.store.sql import TABLES

        with self.store.engine.connect() as conn:
            return pd.read_sql(select(TABLES["events"]).where(
                TABLES["events"].c.campaign == campaign_id), conn)

    def event_counts(self, campaign_id: str) -> pd.DataFrame:
        """Events per variant (rows) and type (columns), counted by the database."""
        from sqlalchemy import func

        from adpilot.store.sql import TABLES

        ev = TABLES["events"]
        q = (select(ev.c.variant, ev.c.type, func.count().label("n"))
             .where(ev.c.campaign == campaign_id).group_by(ev.c.variant, ev.c.type))
        with self.store.engine.connect() as conn:
            rows = pd.read_sql(q, conn)
        if rows.empty:
            return pd.DataFrame()
        return rows.pivot_table(index=C.VARIANT, columns=C.EVENT_TYPE, values="n", fill_value=0)

    def refresh_policies(self, campaign_ids: list[str]) -> None:
        """Rebuild each campaign's policy from all its stored events (idempotent)."""
        for cid in campaign_ids:
            camp = self.get(cid)
            state = json.loads(camp["policy_state"])
            if state["kind"] != "thompson":
                continue
            counts = self.event_counts(cid)
            imp = counts.get("impression", pd.Series(dtype=float))
            succ = counts.get(camp["goal"], pd.Series(dtype=float))
            self._save_thompson(cid, state, {
                "impressions": [float(imp.get(a, 0)) for a in state["arms"]],
                "successes": [float(succ.get(a, 0)) for a in state["arms"]]})

    def report(self, campaign_id: str) -> dict:
        """Variant statistics, the stopping decision, and allocation over time."""
        from adpilot.optimization.stats import stopping_decision, variant_report

        camp = self.get(campaign_id)
        ev = self.events(campaign_id)
        if ev.empty:
            return {"campaign": campaign_id, "name": camp["name"], "events": 0}
        rep = variant_report(ev, goal=camp["goal"])
        daily = (ev[ev[C.EVENT_TYPE] == "impression"].assign(day=pd.to_datetime(
            ev[C.TIME]).dt.floor("D")).groupby(["day", C.VARIANT]).size().unstack(fill_value=0))
        return {"campaign": campaign_id, "name": camp["name"], "goal": camp["goal"],
                "status": camp["status"], "events": int(len(ev)),
                "variants": rep.reset_index().rename(columns={"index": C.VARIANT}).to_dict(
                    "records"),
                "srm_p_value": rep.attrs["srm_p_value"], "decision": stopping_decision(rep),
                "allocation_by_day": {str(k.date()): v for k, v in daily.to_dict("index").items()}}
