"""Uplift learners, metrics and policies: on simulated data with known effects, and on the
real Hillstrom experiment."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from adpilot.cli import main
from adpilot.datasets import DATASETS, load_dataset
from adpilot.errors import ConfigError, NotFittedError
from adpilot.targeting.evaluate import evaluate_uplift
from adpilot.targeting.metrics import policy_value_ipw, qini_coefficient, uplift_at_k
from adpilot.targeting.policy import UpliftPolicy
from adpilot.targeting.uplift import DRLearner, TLearner, XLearner


def _simulated(n=12000, seed=0):
    """Two treatments: A helps when x0 > 0, B helps when x1 > 0; control baseline 0.2."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    t = rng.choice(["ctrl", "A", "B"], size=n)
    tau_a = 0.25 * (x[:, 0] > 0)
    tau_b = 0.25 * (x[:, 1] > 0)
    p = 0.2 + np.where(t == "A", tau_a, 0) + np.where(t == "B", tau_b, 0)
    y = (rng.random(n) < p).astype(float)
    return x, t, y, np.column_stack([tau_a, tau_b])


@pytest.mark.parametrize("cls", [TLearner, XLearner, DRLearner])
def test_learners_recover_who_benefits_from_what(cls):
    x, t, y, truth = _simulated()
    model = cls(control="ctrl", seed=0).fit(x, t, y)
    assert model.treatments_ == ["A", "B"]
    up = model.predict_uplift(x)
    assert up.shape == (len(x), 2)
    for j in range(2):
        assert np.corrcoef(up[:, j], truth[:, j])[0, 1] > 0.6
    best = up.argmax(axis=1)
    helped = truth.max(axis=1) > 0
    assert (truth[np.arange(len(x)), best][helped] > 0).mean() > 0.8


def test_not_fitted_and_bad_control():
    with pytest.raises(NotFittedError):
        TLearner(control="ctrl").predict_uplift(np.zeros((2, 3)))
    x, t, y, _ = _simulated(300)
    with pytest.raises(ConfigError, match="control 'none' not among treatments"):
        TLearner(control="none").fit(x, t, y)


def test_qini_and_uplift_at_k_reward_good_rankings():
    x, t, y, truth = _simulated(20000, seed=1)
    keep = t != "B"
    score = truth[keep, 0]
    treated = t[keep] == "A"
    good = qini_coefficient(y[keep], score, treated)
    bad = qini_coefficient(y[keep], -score, treated)
    assert good > 0 > bad
    assert uplift_at_k(y[keep], score, treated, 0.3) > 0.15


def test_ipw_value_of_a_single_arm_is_its_rate():
    x, t, y, _ = _simulated(30000, seed=2)
    est = policy_value_ipw(y, (t == "A").astype(float), np.full(len(y), 1 / 3), n_boot=300)
    observed = y[t == "A"].mean()
    assert est.ci_low <= observed <= est.ci_high


def test_budget_policy_contacts_at_most_the_budget():
    uplift = np.array([[0.3, 0.1], [0.05, 0.2], [-0.1, -0.2], [0.4, 0.0]])
    assert UpliftPolicy().decide(uplift).tolist() == [0, 1, -1, 0]
    assert UpliftPolicy(budget=0.5).decide(uplift).tolist() == [0, -1, -1, 0]
    assert UpliftPolicy(cost_per_contact=0.25).decide(uplift).tolist() == [0, -1, -1, 0]
    with pytest.raises(ConfigError, match="'budget' parameter of UpliftPolicy"):
        UpliftPolicy(budget=1.5)


def test_hillstrom_mens_arm_ipw_matches_observed_rate(shared_data, data_sources):
    frame = load_dataset("hillstrom", data_sources).tables["hillstrom"].sample(24000, random_state=0)
    r = evaluate_uplift(frame, treatment_col="segment", control="No E-Mail", outcome="visit",
                        features=["recency", "history", "mens", "womens", "zip_code", "newbie",
                                  "channel"], n_boot=300).result
    assert r["n_test"] == 7200 and r["best_single_arm"] == "Mens E-Mail"
    mens = r["arms"]["Mens E-Mail"]
    assert 0.15 < mens["value"] < 0.22 and mens["ci_low"] < mens["value"] < mens["ci_high"]
    assert r["arms"]["No E-Mail"]["value"] < r["arms"]["Womens E-Mail"]["value"]
    assert r["budget"]["fraction"] == pytest.approx(0.5, abs=1e-3)


def test_uplift_cli_json(shared_data, tmp_path, capsys):
    sample = tmp_path / "h.csv"
    pd.read_csv(shared_data / DATASETS["hillstrom"].file).sample(15000, random_state=1).to_csv(
        sample, index=False)
    code = main(["uplift", "eval", "--data", str(sample), "--treatment-col", "segment",
                 "--control", "No E-Mail", "--outcome", "visit", "--budget", "0.5", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"policy", "arms", "budget", "qini", "auuc"} <= set(out)
    assert {"value", "ci_low", "ci_high"} <= set(out["policy"])
    assert {"fraction", "policy_value", "random_value"} <= set(out["budget"])
    # outcome columns are never features
    assert not {"conversion", "spend", "visit"} & set(out["features"])


def test_recommenders_beat_popularity_on_real_purchases(shared_data, data_sources):
    from adpilot.targeting.recommend import evaluate_recommenders

    tx = load_dataset("online_retail", data_sources).tables["transactions"]
    tx = tx[(tx["quantity"] > 0) & (tx["time"] >= "2011-06-01")]
    r = evaluate_recommenders(tx, user_col="user_id", item_col="product_id", time_col="time",
                              models=["popularity", "item_cooccurrence"], k=10)
    assert r["users_evaluated"] > 300
    assert r["model"] == "item_cooccurrence"
    assert r["ndcg_at_k"] > 1.2 * r["popularity"]["ndcg_at_k"]
    assert r["coverage"] > r["popularity"]["coverage"]
    assert 0 < r["precision_at_k"] <= 1 and 0 < r["recall_at_k"] <= 1


def test_ranking_metrics_by_hand():
    import scipy.sparse as sp

    from adpilot.targeting.recommend import ranking_metrics

    relevant = sp.csr_matrix(np.array([[0, 1, 0, 1], [1, 0, 0, 0]], dtype=np.float32))
    recs = np.array([[1, 2], [3, 0]])
    m = ranking_metrics(recs, relevant, np.array([0, 1]), 2, 4)
    assert m["precision_at_k"] == pytest.approx(0.5)
    assert m["recall_at_k"] == pytest.approx((0.5 + 1.0) / 2)
    ndcg_user1 = (1 / np.log2(3)) / 1.0
    assert m["ndcg_at_k"] == pytest.approx((1 / (1 + 1 / np.log2(3)) + ndcg_user1) / 2)
    assert m["coverage"] == pytest.approx(1.0)


def test_budget_allocation_equalises_marginal_returns():
    from adpilot.targeting.budget import Response, allocate, expected_conversions

    responses = {("a",): Response(a=2.0, b=0.5, ads=1), ("b",): Response(a=1.0, b=0.5, ads=1)}
    alloc = allocate(responses, 100.0)
    assert sum(alloc.values()) == pytest.approx(100.0)
    # for b = 0.5 the optimum spends in proportion to a²: 80 / 20
    assert alloc[("a",)] == pytest.approx(80.0, rel=1e-4)
    even = {("a",): 50.0, ("b",): 50.0}
    assert expected_conversions(responses, alloc) > expected_conversions(responses, even)


def test_budget_backtest_on_facebook_ads(shared_data, data_sources):
    from adpilot.targeting.budget import backtest

    ads = load_dataset("facebook_ads", data_sources).tables["facebook_ads"]
    r = backtest(ads, group_cols=["age", "gender"], seed=0, n_boot=50)
    assert len(r["audiences"]) == 8
    assert sum(v["optimised"] for v in r["allocation"].values()) == pytest.approx(r["budget"])
    assert r["optimised"]["conversions"] > r["proportional"]["conversions"]


def test_delivery_plan_on_sample(tmp_path):
    from adpilot.data import ingest_file
    from adpilot.pipeline import sample_dir
    from adpilot.targeting.plan import PlanSettings, build_plan

    t = {k: ingest_file(k, sample_dir() / f"{k}.csv", quarantine_dir=tmp_path).frame
         for k in ("customers", "events", "transactions")}
    plan = build_plan(t["customers"]["id"], t["events"], t["transactions"],
                      PlanSettings(budget=0.5))
    assert len(plan) == 40 and plan["contact"].sum() == 20
    assert set(plan["channel"]) <= {"email", "sms", "push", "social"}
    assert plan["variant"].nunique() == 1 and plan["product_id"].notna().all()
    bought = t["transactions"].groupby("user_id")["product_id"].agg(set)
    assert all(row.product_id not in bought.get(row.user_id, set())
               for row in plan.itertuples())  # featured products are new to the customer
    assert set(plan.loc[~plan["contact"], "reason"]) == {"outside the contact budget"}
