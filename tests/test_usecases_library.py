"""The data-overview and ROI use cases called as a library, with no HTTP: a real SQLite store
filled from the bundled sample files, typed errors, the shell's remedy in a not-ready error,
and prices passed in (never read from settings)."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from adpilot.data.ingest import ingest_file
from adpilot.errors import NotFoundError, NotReadyError
from adpilot.optimization.roi import Prices
from adpilot.pipeline import sample_dir
from adpilot.store import Store
from adpilot.usecases.data_overview import DataService
from adpilot.usecases.roi import DEFAULT_CPM, roi_report, with_media_cpm

PRICES = Prices(email=0.002, sms=0.04, push=0.0005)


def _sample_rows(kind: str) -> list[dict]:
    with open(sample_dir() / f"{kind}.csv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'lib.db'}").init()
    yield s
    s.dispose()


def test_data_overview_before_and_after_ingest(store, tmp_path):
    data = DataService(store, build_hint="run `make profiles`")
    empty = data.overview()
    assert set(empty["counts"].values()) == {0}
    assert empty["derived"] == {"profiles": 0, "segments": 0} and empty["ingest_runs"] == []
    with pytest.raises(NotReadyError, match="no profiles yet: run `make profiles`"):
        data.profile("u1")
    with pytest.raises(NotFoundError):
        data.product("P01")

    for kind in ("customers", "products"):
        ingest_file(kind, sample_dir() / f"{kind}.csv", store=store, quarantine_dir=tmp_path)
    seen = data.overview()
    assert seen["counts"]["products"] == len(_sample_rows("products"))
    assert seen["counts"]["customers"] == len(_sample_rows("customers"))
    assert [r["kind"] for r in seen["ingest_runs"]] == ["customers", "products"]
    assert [r["kind"] for r in data.overview(runs=1, newest_first=True)["ingest_runs"]] == [
        "products"]
    assert all("/" not in str(r.get("source", "")) for r in seen["ingest_runs"])  # no paths
    product = data.product("P01")
    assert product.id == "P01" and product.title == "Linen Wrap Midi Dress"

    store.write_table("segments", pd.DataFrame({"segment": ["S0", "S1"], "size": [2, 1]}))
    store.write_table("profiles", pd.DataFrame({"user_id": ["u1", "u2", "u3"],
                                                "segment": ["S0", "S0", "S1"],
                                                "summary": ["a", "b", "c"]}))
    assert data.overview()["derived"] == {"profiles": 3, "segments": 2}
    seg, members = data.members("S0")
    assert seg["size"] == 2 and list(members["user_id"]) == ["u1", "u2"]
    assert data.profile("u3")["segment"] == "S1"
    with pytest.raises(NotFoundError, match="unknown segment 'S9'"):
        data.members("S9")
    with pytest.raises(NotFoundError, match="no profile for user 'u9'"):
        data.profile("u9")


def test_roi_report_uses_the_prices_it_is_given(store, tmp_path):
    for kind in ("customers", "products", "transactions", "events"):
        ingest_file(kind, sample_dir() / f"{kind}.csv", store=store, quarantine_dir=tmp_path)
    campaigns = pd.DataFrame({"id": ["spring-launch"], "name": ["Spring launch"]})
    base = roi_report(store, campaigns, PRICES)
    assert base.prices == PRICES and base.cpm == DEFAULT_CPM
    (row,) = base.table.to_dict("records")
    assert row["campaign"] == "spring-launch" and row["name"] == "Spring launch"

    events = _sample_rows("events")
    imps = pd.Series([r["channel"] for r in events if r["type"] == "impression"]).value_counts()
    expected = (imps["email"] * PRICES.email + imps["sms"] * PRICES.sms
                + imps["push"] * PRICES.push + imps["social"] * DEFAULT_CPM["social"] / 1000)
    assert row["cost"] == pytest.approx(expected)

    dearer = roi_report(store, campaigns, PRICES, cpm=20.0)
    assert dict(dearer.prices.media_cpm) == dearer.cpm == {"social": 20.0, "search_ad": 20.0}
    assert dearer.prices.email == PRICES.email
    (row2,) = dearer.table.to_dict("records")
    assert row2["cost"] == pytest.approx(expected + imps["social"] * (20.0 - 6.0) / 1000)
    # a message channel keeps its price per message
    assert with_media_cpm(PRICES, {"email": 9.0}) == PRICES


def test_copy_service_builds_its_backend_once_and_errors_are_typed(store, tmp_path):
    from test_api import TemplateLLM

    from adpilot.errors import ConfigError, MissingDependencyError
    from adpilot.usecases.copy_service import CopyService, score_copy
    from adpilot.usecases.studio import scoring_available

    built: list[TemplateLLM] = []

    def factory() -> TemplateLLM:
        built.append(TemplateLLM())
        return built[-1]

    copy = CopyService(factory)
    assert copy.generator().backend is copy.generator().backend is built[0] and len(built) == 1

    def missing():
        raise ImportError("No module named 'llama_cpp'")

    with pytest.raises(MissingDependencyError, match="llama_cpp"):
        CopyService(missing).check()

    ingest_file("products", sample_dir() / "products.csv", store=store, quarantine_dir=tmp_path)
    store.write_table("segments", pd.DataFrame({"segment": ["S0"], "size": [1]}))
    data = DataService(store)
    if not scoring_available():
        with pytest.raises(MissingDependencyError):
            score_copy(data, ["hello"])
        return
    # both refused before any model is loaded or trained
    with pytest.raises(NotFoundError, match="unknown product 'P99'"):
        score_copy(data, ["hello"], product_id="P99")
    with pytest.raises(ConfigError, match="unknown segment 'S9'"):
        score_copy(data, ["hello"], product_id="P01", segment="S9")
