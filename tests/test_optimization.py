"""Campaigns, bandit policies, statistics, off-policy evaluation and the simulator."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from adpilot.cli import main
from adpilot.errors import ConfigError
from adpilot.optimization.campaigns import Campaigns
from adpilot.optimization.ope import evaluate_logs, ipw
from adpilot.optimization.policies import (
    FixedSplit,
    LinearThompson,
    ThompsonSampling,
    policy_from_state,
)
from adpilot.optimization.simulator import compare_policies
from adpilot.optimization.stats import msprt, sample_ratio_mismatch, wilson


def test_thompson_propensities_floor_and_state_roundtrip():
    ts = ThompsonSampling(["A", "B", "C"], floor=0.06, seed=0)
    ts.update_counts("B", 60, 1000)
    ts.update_counts("A", 20, 1000)
    ts.update_counts("C", 30, 1000)
    p = ts.probabilities()
    assert p.sum() == pytest.approx(1.0) and p.min() >= 0.02 - 1e-12 and p.argmax() == 1
    again = policy_from_state(json.loads(json.dumps(ts.state())))
    assert again.state()["alpha"] == ts.state()["alpha"]
    ts.add_arm("D")
    assert ts.arms[-1] == "D" and ts.probabilities()[-1] > 0.02  # cold start: prior only
    with pytest.raises(ConfigError, match="'floor' parameter of ThompsonSampling"):
        ThompsonSampling(["A"], floor=1.0)


def test_fixed_split_and_linear_thompson():
    rng = np.random.default_rng(0)
    fs = FixedSplit(["A", "B"], [3, 1])
    picks = [fs.choose(rng)[0] for _ in range(4000)]
    assert picks.count("A") / 4000 == pytest.approx(0.75, abs=0.03)
    lin = LinearThompson(["A", "B"], dim=2, seed=0)
    for _ in range(300):  # A pays when x0 = 1, B when x1 = 1
        lin.update("A", 1.0, [1, 0])
        lin.update("B", 0.0, [1, 0])
        lin.update("A", 0.0, [0, 1])
        lin.update("B", 1.0, [0, 1])
    assert lin.probabilities([1, 0])[0] > 0.9 and lin.probabilities([0, 1])[1] > 0.9


def test_stats_intervals_and_tests():
    lo, hi = wilson(np.array([30]), np.array([1000]))
    assert lo[0] < 0.03 < hi[0]
    p_same, low, high = msprt(100, 5000, 102, 5000)
    assert p_same > 0.5 and low < 0 < high
    p_diff, low, _ = msprt(100, 20000, 300, 20000)
    assert p_diff < 1e-4 and low > 0
    assert sample_ratio_mismatch(np.array([5000, 5050]), np.array([1, 1])) > 0.3
    assert sample_ratio_mismatch(np.array([5000, 5600]), np.array([1, 1])) < 1e-5


def test_msprt_stays_valid_when_peeking_every_day():
    """A/A tests checked after every batch: the always-valid test rarely cries wolf."""
    rng = np.random.default_rng(0)
    false_alarms = 0
    for _ in range(200):
        a = rng.binomial(500, 0.05, size=30).cumsum()
        b = rng.binomial(500, 0.05, size=30).cumsum()
        n = np.arange(1, 31) * 500
        if any(msprt(a[i], n[i], b[i], n[i])[0] < 0.05 for i in range(30)):
            false_alarms += 1
    assert false_alarms / 200 <= 0.05


def test_thompson_beats_uniform_in_the_simulator():
    r = compare_policies(np.array([0.010, 0.012, 0.018]), impressions=10000, runs=5)
    assert r["thompson"]["clicks_vs_oracle"]["median"] > r["uniform"]["clicks_vs_oracle"]["median"]
    assert r["thompson"]["final_regret_median"] < r["uniform"]["final_regret_median"]


def test_ope_hillstrom_ipw_matches_the_mens_arm(shared_data, data_sources):
    from adpilot.datasets import load_dataset

    h = load_dataset("hillstrom", data_sources).tables["hillstrom"].assign(p=1 / 3)
    target = pd.DataFrame({"segment": ["Mens E-Mail", "Womens E-Mail", "No E-Mail"],
                           "probability": [1.0, 0.0, 0.0]})
    r = evaluate_logs(h, action_col="segment", reward_col="visit", propensity_col="p",
                      target=target)
    observed = h.loc[h["segment"] == "Mens E-Mail", "visit"].mean()
    for est in r["estimates"].values():
        assert est["ci_low"] <= observed <= est["ci_high"]


def test_ope_intervals_cover_the_truth_on_simulated_logs():
    rng = np.random.default_rng(1)
    means = np.array([0.02, 0.05, 0.03])
    logging, target = np.array([0.6, 0.2, 0.2]), np.array([0.1, 0.8, 0.1])
    truth, covered = float(target @ means), 0
    for _ in range(60):
        a = rng.choice(3, 4000, p=logging)
        r = (rng.random(4000) < means[a]).astype(float)
        e = ipw(r, target[a], logging[a])
        covered += e.ci_low <= truth <= e.ci_high
    assert covered / 60 >= 0.85


def test_ope_cli_uniform_with_positions(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 3000
    logs = pd.DataFrame({"item": rng.choice(["a", "b", "c"], n), "pos": rng.choice([1, 2], n)})
    logs["click"] = (rng.random(n) < np.where(logs["item"] == "a", 0.1, 0.02)).astype(int)
    logs["p"] = 1 / 3
    path = tmp_path / "logs.csv"
    logs.to_csv(path, index=False)
    code = main(["ope", "eval", "--logs", str(path), "--action-col", "item", "--reward-col",
                 "click", "--propensity-col", "p", "--position-col", "pos", "--policy", "uniform",
                 "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["n"] == n and set(out["estimates"]) == {"ipw", "snipw", "dr"}
    assert out["estimates"]["ipw"]["value"] == pytest.approx(logs["click"].mean(), abs=0.01)


def _events(cid, users, variant="A", kind="impression", start=0, time="2030-01-01T00:10:00"):
    return pd.DataFrame({"event_id": [f"e{start + i}" for i in range(len(users))],
                         "campaign": cid, "variant": variant, "user_id": users,
                         "channel": "email", "type": kind, "time": time})


def test_campaign_lifecycle_persists_and_dedupes(store):
    camps = Campaigns(store, seed=0)
    cid = camps.create("Spring", ["A", "B"], channel="email")
    decisions = [camps.decide(f"u{i}", cid) for i in range(40)]
    assert all(0 < d.propensity <= 1 for d in decisions)
    log = camps.decisions(cid)
    assert len(log) == 40 and set(log["variant"]) <= {"A", "B"}
    t0 = pd.Timestamp(log["time"].min()) + pd.Timedelta(minutes=1)
    batch = pd.concat([_events(cid, [f"u{i}" for i in range(40)], time=str(t0)),
                       _events(cid, ["u1", "u2"], kind="click", start=100, time=str(t0)),
                       _events("nope", ["u1"], start=200, time=str(t0)),
                       _events(cid, ["stranger"], start=300, time=str(t0)),
                       _events(cid, ["u3"], start=400, time=str(t0 + pd.Timedelta(days=30))),
                       _events(cid, ["u4"], variant="Z", start=500, time=str(t0))],
                      ignore_index=True)
    batch = pd.concat([batch, batch.head(5)], ignore_index=True)  # a re-sent slice
    first = camps.ingest_events(batch)
    reasons = first.summary()["reasons"]
    assert first.read == len(batch) and first.kept == 42
    assert first.kept + first.quarantined == first.read
    assert reasons["unknown campaign"] == 1 and reasons["unknown variant for this campaign"] == 1
    assert reasons["no decision logged for this user in this campaign"] == 1
    assert reasons["outside the attribution window"] == 1 and reasons["duplicate id"] == 5
    second = camps.ingest_events(batch)
    assert second.duplicates_in_store == 42 and store.count("events") == 42
    state = camps.policy(cid).state()
    camps.refresh_policies([cid])  # a full recount agrees with the incremental counts
    assert camps.policy(cid).state()["alpha"] == state["alpha"]
    assert camps.policy(cid).state()["beta"] == state["beta"]
    restarted = Campaigns(store, seed=1).policy(cid).state()  # survives a restart
    assert restarted["alpha"] == state["alpha"] and sum(state["alpha"]) == 2 + 2
    camps.add_variant(cid, "C", channel="sms")
    assert Campaigns(store).policy(cid).arms == ["A", "B", "C"]
    report = camps.report(cid)
    assert {v["variant"] for v in report["variants"]} == {"A"} or report["events"] == 42
    camps.set_status(cid, "paused")
    with pytest.raises(ConfigError, match="paused"):
        Campaigns(store).decide("u1", cid)


def test_closing_the_loop_retires_losers_learns_from_winners_and_regenerates(tmp_path):
    """A clear loser is retired (never chosen again), the winner becomes a few-shot example the
    generator is shown, a winner-vs-loser pair comes back, and a fresh variant replaces the
    loser in the running campaign."""
    from adpilot.backends.llm.base import Completion, LLMBackend, Usage
    from adpilot.data.records import Product
    from adpilot.generation import Audience, CopyGenerator
    from adpilot.generation.examples import ExampleBank
    from adpilot.optimization.loop import close_loop
    from adpilot.store import Store

    class Writer(LLMBackend):  # stands in for the LLM: records prompts, writes valid copy
        name = "writer"
        prompts: list[str] = []

        @property
        def model_id(self) -> str:
            return "writer"

        def complete(self, messages, params):
            self.prompts.append(messages[-1].content)
            return Completion(json.dumps({"text": "Soft linen for slow summer mornings."}),
                              Usage(10, 10), 0.01, "writer")

    store = Store(f"sqlite:///{tmp_path / 'loop.db'}").init()
    camps = Campaigns(store, seed=0)
    copies = {"A": {"text": "Linen that breathes on the hottest days."},
              "B": {"text": "Our shirt. Buy it."},
              "C": {"text": "Cool linen, relaxed fit, easy care."}}
    cid = camps.create("loop", list(copies), channel="sms", copies=copies)
    rng = np.random.default_rng(0)
    rows = []
    for variant, rate in (("A", 0.10), ("B", 0.02), ("C", 0.09)):
        clicks = rng.random(2000) < rate
        for i, clicked in enumerate(clicks):
            rows.append({"event_id": f"{variant}i{i}", "campaign": cid, "variant": variant,
                         "user_id": f"{variant}{i}", "type": "impression", "time": "2026-11-29"})
            if clicked:
                rows.append({"event_id": f"{variant}c{i}", "campaign": cid, "variant": variant,
                             "user_id": f"{variant}{i}", "type": "click", "time": "2026-11-29"})
    camps.ingest_events(pd.DataFrame(rows))

    early = close_loop(camps, cid, min_impressions=5000)
    assert early.retired == [] and "waiting" in early.reason

    bank = ExampleBank(store)
    llm = Writer()
    gen = CopyGenerator(llm, cache=False, examples=bank)
    product = Product(id="p1", title="Linen shirt", description="breathable linen shirt",
                      language="en")
    result = close_loop(camps, cid, min_impressions=1000, bank=bank, generator=gen,
                        product=product, audience=Audience(description="summer shoppers"))
    assert result.winner == "A" and result.retired == ["B"] and result.added == ["B.2"]
    assert result.pairs[["chosen_variant", "rejected_variant"]].values.tolist() == [["A", "B"]]
    assert bank.top("sms", "en") == ["Linen that breathes on the hottest days."]
    assert "<example>Linen that breathes on the hottest days.</example>" in llm.prompts[-1]

    status = camps.variants(cid).set_index("variant")["status"].to_dict()
    assert status == {"A": "active", "B": "retired", "C": "active", "B.2": "active"}
    fresh = Campaigns(store, seed=1)  # the retirement persists in the stored policy
    chosen = {fresh.decide(f"u{i}", cid).variant for i in range(300)}
    assert "B" not in chosen and "B.2" in chosen
    # the CLI runs the same turn: the new variant has no evidence yet, so nothing more happens
    out = tmp_path / "pairs.jsonl"
    code = main(["campaign", "refresh", "--campaign", cid, "--db", store.url,
                 "--pairs-out", str(out), "--json"])
    assert code == 0 and out.exists() and out.read_text().strip() == ""
    page = tmp_path / "report.html"
    assert main(["campaign", "report", "--campaign", cid, "--db", store.url, "--html", str(page),
                 "--json"]) == 0
    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") == 2 and "Allocation" in html and "B.2" not in html  # no events yet
