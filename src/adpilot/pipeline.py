"""``adpilot run``: the end-to-end main job, as a list of steps over one shared context.

Each stage adds its step to :data:`STEPS`; a step reads what earlier steps put in the context
and adds a section to the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from adpilot import fallbacks
from adpilot.data import columns as C
from adpilot.data.csv_safe import write_csv
from adpilot.data.ingest import IngestResult, ingest_file
from adpilot.delivery.run_steps import step_campaign_delivery
from adpilot.report import Report
from adpilot.report.html import Section
from adpilot.report.roi import step_roi
from adpilot.store import Store

if TYPE_CHECKING:  # profiling imports pandas-heavy modules; the run loads it in its step
    from adpilot.artifacts import ModelStore
    from adpilot.config import Settings
    from adpilot.profiling.build import ProfileRun

SAMPLE_FILES = {  # kind -> file in the built-in sample, in dependency order
    "customers": "customers.csv",
    "products": "products.csv",
    "reviews": "reviews.csv",
    "transactions": "transactions.csv",
    "events": "events.csv",
    "consents": "consents.csv",  # also fed to the delivery consent ledger
}


def sample_dir() -> Path:
    """The built-in sample shipped in the package (English and Chinese, written for adpilot)."""
    return Path(str(resources.files("adpilot") / "sample"))


@dataclass
class RunContext:
    """What the steps share: where data comes from and goes, and what earlier steps made."""

    store: Store
    out_dir: Path
    data_dir: Path
    report: Report
    ingests: dict[str, IngestResult] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    sentiment: str = "auto"  # auto | model | rating (see profiling.polarity.resolve_sentiment)
    llm: str = "llamacpp"  # LLM backend for the copy step, or "none"
    executor: str | None = None  # heavy profiling stages on "local" | "ray" (None: in one go)
    ray_address: str | None = None  # join this Ray cluster instead of starting Ray locally
    progress: Callable[[str, int, int], None] | None = None  # long sub-tasks report here
    profiles: ProfileRun | None = None  # once the profiles step ran
    plan: pd.DataFrame | None = None  # per-customer delivery plan, once targeting ran
    copy_plan: pd.DataFrame | None = None  # per-customer copy, once the copy step ran
    approve: bool = False  # approve the variants that passed every guardrail
    delivery: dict | None = None  # the dry run's counts, once the delivery step ran
    settings: Settings | None = None  # what the shell read (prices…); None: library defaults

    def table(self, kind: str) -> pd.DataFrame:
        return self.store.read(kind)


Step = Callable[[RunContext], None]


def step_ingest(ctx: RunContext) -> None:
    """Ingest every sample file into the store; bad rows go to quarantine files in out_dir."""
    for kind, name in SAMPLE_FILES.items():
        path = ctx.data_dir / name
        if path.exists():
            ctx.ingests[kind] = ingest_file(
                kind, path, store=ctx.store, quarantine_path=ctx.out_dir / f"quarantine-{kind}.csv")


def step_data_report(ctx: RunContext) -> None:
    """Data overview / 数据概览: counts, what was quarantined and why, first charts."""
    from adpilot.report.charts import funnel_chart, rating_chart, revenue_chart

    sec = ctx.report.section("Data overview · 数据概览")
    counts = {k: ctx.store.count(k) for k in SAMPLE_FILES}
    sec.parts.append(Report.kpis({f"{k} stored": v for k, v in counts.items()}))
    rows = [{"kind": r.kind, "file": Path(r.source).name, "read": r.read, "kept": r.kept,
             "quarantined": r.quarantined,
             "reasons": "; ".join(f"{n}× {why}" for why, n in r.summary()["reasons"].items())}
            for r in ctx.ingests.values()]
    from adpilot.report.html import table_html

    sec.parts.append("<h3>Ingest · 导入 (read = kept + quarantined)</h3>")
    sec.parts.append(table_html(pd.DataFrame(rows)))
    reviews, tx, events = ctx.table("reviews"), ctx.table("transactions"), ctx.table("events")
    figs = []
    if len(reviews):
        figs.append(rating_chart(reviews))
    if len(tx):
        figs.append(revenue_chart(tx))
    if len(events):
        figs.append(funnel_chart(events))
    sec.parts.append(Report.figures(*figs))
    if len(reviews):
        langs = reviews[C.LANGUAGE].value_counts().to_dict()
        sec.parts.append(Report.text(
            "Reviews by detected language: " + ", ".join(f"{k} {v}" for k, v in langs.items()),
            note=True))


def _executor(ctx: RunContext):
    """The executor the run was asked for, as a context manager (a null one when none)."""
    if not ctx.executor:
        return nullcontext()
    from adpilot.backends.executor import get_executor

    return get_executor(ctx.executor, **({"address": ctx.ray_address} if ctx.executor == "ray" else {}))


def _ensure_sentiment_models(ctx: RunContext) -> ModelStore | None:
    """The explicit training step before profiling: the polarity models, built where missing
    (a stated fallback without data); the model store profiling loads them from. Without
    settings (library defaults) there is no store: profiling states the star-rating fallback."""
    from adpilot.artifacts import ModelStore
    from adpilot.datasets_fetch import DataSources
    from adpilot.models_fetch import ensure_sentiment_models
    from adpilot.profiling.polarity import state_unbuilt

    if ctx.settings is None or ctx.sentiment == "rating":
        return None
    store = ModelStore.from_settings(ctx.settings)
    state_unbuilt(ensure_sentiment_models(store, sources=DataSources.from_settings(ctx.settings),
                                          progress=ctx.progress), ctx.sentiment)
    return store


def step_profiles(ctx: RunContext) -> None:
    """Profiles and segments / 用户画像与分群: sentiment, aspects, RFM, embeddings, k-means."""
    from adpilot.profiling.build import export_profiles, profile_store
    from adpilot.report.charts import segment_chart
    from adpilot.report.html import table_html

    model_store = _ensure_sentiment_models(ctx)
    precision = ctx.settings.sentiment_precision if ctx.settings is not None else "fp32"
    # One workflow: with an executor the heavy stages run as batch stages (their outputs as
    # Parquet under out_dir/stages); without one, in process.
    with _executor(ctx) as ex:
        run = profile_store(ctx.store, executor=ex, seed=0, sentiment=ctx.sentiment,
                            model_store=model_store, precision=precision,
                            work_dir=ctx.out_dir / "stages")
    ctx.profiles = run
    ctx.outputs.update(export_profiles(run, ctx.out_dir))
    sec = ctx.report.section("Profiles and segments · 用户画像与分群")
    table = run.profiles.table
    sec.parts.append(Report.kpis({"profiles": len(table), "segments": len(run.segments),
                                  "aspect opinions": len(run.aspects)}))
    sec.parts.append(Report.text(
        f"Review sentiment from: {run.sentiment_source}; embeddings: {run.embedder}; "
        f"k chosen by silhouette: {run.silhouettes}", note=True))
    sec.parts.append(Report.figures(segment_chart(run.segments)))
    sec.parts.append("<h3>Segments · 分群</h3>")
    sec.parts.append(table_html(run.segments[[C.SEGMENT, "size", "name", C.DESCRIPTION,
                                              "description_zh"]]))
    sec.parts.append("<h3>Example profiles · 用户画像示例</h3>")
    examples = table.sort_values("n_reviews", ascending=False).groupby(C.SEGMENT).head(1)
    sec.parts.append(table_html(examples[[C.USER_ID, C.SEGMENT, "summary", "summary_zh"]]))


def step_targeting(ctx: RunContext) -> None:
    """Delivery plan / 投放计划: contact or not, channel, message variant, featured product."""
    from adpilot.report.html import table_html
    from adpilot.targeting.plan import PlanSettings, build_plan

    customers, events = ctx.table("customers"), ctx.table("events")
    if events.empty or customers.empty:
        return
    plan = build_plan(customers[C.ID], events, ctx.table("transactions"),
                      PlanSettings(budget=0.6))
    if ctx.profiles is not None:
        seg = ctx.profiles.profiles.table.set_index(C.USER_ID)[C.SEGMENT]
        plan.insert(1, C.SEGMENT, seg.reindex(plan[C.USER_ID]).to_numpy())
    path = ctx.out_dir / "targeting_plan.csv"
    write_csv(plan, path)
    ctx.outputs["targeting_plan"] = str(path)
    ctx.plan = plan
    sec = ctx.report.section("Delivery plan · 投放计划")
    contacted = plan[plan["contact"]]
    sec.parts.append(Report.kpis({"customers": len(plan), "contacted": len(contacted),
                                  "expected value": f"{contacted['expected_value'].sum():,.0f}"}))
    sec.parts.append(Report.text(
        "Contact budget 60% of customers, ranked by expected value = P(click on the channel) × "
        "P(conversion | click, variant) × mean order value − contact cost; rates are "
        "Beta-Binomial posteriors from the past campaign. The past campaign has no control "
        "group, so this is response targeting, not uplift.", note=True))
    mix = contacted.groupby([C.CHANNEL, C.VARIANT]).size().rename("customers").reset_index()
    sec.parts.append(table_html(mix))
    sec.parts.append(table_html(plan.head(12)))


def _model_store(ctx: RunContext):
    """The run's :class:`~adpilot.artifacts.ModelStore` (None without settings: the copy
    stages then run their stated fallbacks)."""
    from adpilot.artifacts import ModelStore

    return ModelStore.from_settings(ctx.settings) if ctx.settings is not None else None


def _ensure_copy_models(ctx: RunContext) -> None:
    """The explicit training step before copy: the complaint guardrail's classifiers and the
    scorecard's fluency references, built where missing (a stated fallback without data).
    Without settings (library defaults) there are no data sources to train from: nothing is
    built here, and the stages use their stated fallbacks."""
    from adpilot.datasets_fetch import DataSources
    from adpilot.models_fetch import ensure_copy_models

    if ctx.settings is None:
        return
    ensure_copy_models(_model_store(ctx), progress=ctx.progress,
                       sources=DataSources.from_settings(ctx.settings))


def step_copy(ctx: RunContext) -> None:
    """Campaign copy / 营销文案: per user the product, channel and copy (LLM + guardrails),
    and the scorecard of each distinct copy."""
    from adpilot.errors import MissingDependencyError
    from adpilot.report.html import table_html

    sec = ctx.report.section("Campaign copy · 营销文案")
    if ctx.llm == "none":
        sec.parts.append(Report.text("Skipped: run with an LLM backend (--llm llamacpp).",
                                     note=True))
        return
    if ctx.profiles is None:
        sec.parts.append(Report.text("Skipped: copy needs the profiles step.", note=True))
        return
    try:
        from adpilot.generation import CopyGenerator
        from adpilot.generation.campaign import plan_campaign
        from adpilot.usecases.llm import build_backend

        # None: no reply cache, and a registered GGUF model cannot be assembled (pass settings)
        cache = ctx.settings.llm_cache_dir if ctx.settings is not None else None
        models_dir = ctx.settings.models_dir if ctx.settings is not None else None
        parallel = ctx.settings.llm_parallel if ctx.settings is not None else None
        generator = CopyGenerator(build_backend(ctx.llm, models_dir=models_dir, parallel=parallel),
                                  cache=cache,
                                  store=_model_store(ctx))
        _ensure_copy_models(ctx)
        plan = plan_campaign(ctx.profiles.profiles.table, ctx.profiles.segments,
                             ctx.table("products"), ctx.table("reviews"),
                             generator, channels=("email",),
                             max_variants=4)
    except MissingDependencyError as exc:
        sec.parts.append(Report.text(f"Skipped: {exc}", note=True))
        return
    if ctx.plan is not None:  # the delivery plan decides contact and channel
        plan = plan.merge(ctx.plan[[C.USER_ID, "contact", C.CHANNEL]].rename(
            columns={C.CHANNEL: "best_channel"}), on=C.USER_ID, how="left")
    path = ctx.out_dir / "campaign_plan.csv"
    ctx.copy_plan = plan
    write_csv(plan, path)
    ctx.outputs["campaign_plan"] = str(path)
    sec.parts.append(Report.kpis({"messages": len(plan),
                                  "passed guardrails": int(plan["passed"].sum()),
                                  "personalised": int(plan["personalised"].sum())}))
    sec.parts.append(table_html(plan.head(12)[[C.USER_ID, C.SEGMENT, C.PRODUCT_ID, C.CHANNEL,
                                               "lang", C.TEXT, "passed"]]))
    card = score_plan(plan, store=generator.store)
    sec.parts.append("<h3>Scorecard of each distinct copy · 文案评分</h3>")
    sec.parts.append(table_html(card, max_rows=16))


def score_plan(plan: pd.DataFrame, *, store=None) -> pd.DataFrame:
    """The scorecard of each distinct copy in a campaign plan (compliance from its guardrails;
    the attractiveness model and fluency references from ``store``, a
    :class:`~adpilot.artifacts.ModelStore`; None: their stated fallbacks)."""
    from adpilot.generation.violation import parse_violations
    from adpilot.scoring.attractiveness import load_default_model
    from adpilot.scoring.scorecard import Scorecard

    distinct = plan.drop_duplicates(C.TEXT).head(16)
    violations = dict(zip(distinct[C.TEXT], distinct["violations"], strict=True))
    attract = load_default_model(store=store)  # None: a stated fallback
    card = Scorecard(attractiveness=attract,  # the plan's guardrail results, read back
                     guardrails=[lambda t: [str(v) for v in parse_violations(violations.get(t))]],
                     store=store).score(distinct[C.TEXT].tolist())
    cols = ["copy", "overall", "attractiveness", "fluency", "readability", "diversity", "tone",
            "why_attractiveness", "why_compliance"]
    return card[cols].round(3)


STEPS: list[tuple[str, Step]] = [
    ("ingest", step_ingest),
    ("data report", step_data_report),
    ("profiles", step_profiles),
    ("targeting", step_targeting),
    ("copy", step_copy),
    ("delivery", step_campaign_delivery),
    ("roi", step_roi),
]


@dataclass
class RunResult:
    out_dir: Path
    report: Path
    db_url: str
    ingests: dict[str, dict]
    timings: dict[str, float]
    outputs: dict[str, str]
    fallbacks: list[dict] = field(default_factory=list)  # stages that ran a stated fallback
    delivery: dict | None = None  # the delivery step's dry-run counts

    def summary(self) -> dict:
        return {"out_dir": str(self.out_dir), "report": str(self.report), "db": self.db_url,
                "ingests": self.ingests, "timings": self.timings, "outputs": self.outputs,
                "fallbacks": self.fallbacks, "delivery": self.delivery}


def fallback_section(report: Report, used: list) -> None:
    """First section of the report: every stage that ran a fallback, why, and how to fix it."""
    from adpilot.report.html import table_html

    if not used:
        return
    sec = Section("Fallbacks · 降级运行")
    sec.parts.append(Report.text(
        "These stages could not get their default model here (no data folder, no download "
        "cache, no network, or a missing extra) and ran the simpler method named instead. "
        "以下环节未能获得默认模型，已改用所列的简化方法。", note=True))
    sec.parts.append(table_html(pd.DataFrame([f.as_dict() for f in used])))
    report.sections.insert(0, sec)


def run(out_dir: str | Path, *, db_url: str | None = None, data_dir: str | Path | None = None,
        steps: list[tuple[str, Step]] | None = None, sentiment: str = "auto",
        llm: str = "llamacpp", executor: str | None = None, ray_address: str | None = None,
        approve: bool = False, on_step: Callable[[str], None] | None = None,
        progress: Callable[[str, int, int], None] | None = None,
        settings: Settings | None = None) -> RunResult:
    """Run the main job on ``data_dir`` (default: the built-in sample) into ``out_dir``;
    ``approve``: approve the planned variants that passed every guardrail (still only a dry run
    of their delivery: ``adpilot send`` sends); ``settings``: what the shell read from the
    environment (the ROI's prices), None for the library's defaults."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    db_url = db_url or f"sqlite:///{(out_dir / 'adpilot.db').resolve()}"
    store = Store(db_url).init()
    ctx = RunContext(store=store, out_dir=out_dir,
                     data_dir=Path(data_dir) if data_dir else sample_dir(),
                     report=Report("adpilot run", subtitle="Lumen & Loom · 麓织 sample"),
                     sentiment=sentiment, llm=llm, progress=progress, executor=executor,
                     ray_address=ray_address, approve=approve, settings=settings)
    with fallbacks.recording() as used:
        for name, step in steps or STEPS:
            if on_step:
                on_step(name)
            started = time.perf_counter()
            step(ctx)
            ctx.timings[name] = round(time.perf_counter() - started, 3)
    fallback_section(ctx.report, list(used.values()))
    report_path = ctx.report.write(out_dir / "report.html")
    store.dispose()
    return RunResult(out_dir, report_path, store.safe_url,
                     {k: r.summary() for k, r in ctx.ingests.items()}, ctx.timings, ctx.outputs,
                     [f.as_dict() for f in used.values()], ctx.delivery)
