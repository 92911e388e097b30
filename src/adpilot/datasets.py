"""Loaders for the public data sets in ``../shared/data`` (see its README) into canonical tables.

Each loader returns a :class:`DatasetLoad`: the primary table (one row per source row that is
usable), tables derived from it (e.g. products and customers seen in the reviews), and the
quarantine. ``read == kept + quarantined`` for the primary table, as for any ingest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from adpilot.data import columns as C
from adpilot.data.mapping import ColumnMapping
from adpilot.data.readers import read_table
from adpilot.data.schema import FieldSpec, RecordSchema
from adpilot.data.validation import validate
from adpilot.errors import InputError

if TYPE_CHECKING:
    from adpilot.datasets_fetch import DataSources


@dataclass
class DatasetLoad:
    """The result of loading one data set file."""

    name: str
    source: str
    read: int
    primary: str
    tables: dict[str, pd.DataFrame]
    quarantine: pd.DataFrame = field(repr=False)

    @property
    def kept(self) -> int:
        return len(self.tables[self.primary])

    @property
    def quarantined(self) -> int:
        return len(self.quarantine)

    def summary(self) -> dict:
        return {
            "dataset": self.name, "source": self.source, "read": self.read, "kept": self.kept,
            "quarantined": self.quarantined, "primary": self.primary,
            "tables": {k: len(v) for k, v in self.tables.items()},
            "reasons": (self.quarantine[C.Q_REASON].str.replace(r"\(first seen.*", "", regex=True)
                        .str.strip().value_counts().to_dict() if self.quarantined else {}),
        }


def data_dir(sources: DataSources) -> Path:
    """``sources.data_dir``, else the first ``shared/data`` found beside or above the cwd (a
    developer's checkout). The library does not need it: :func:`load_dataset` also finds the
    files in the download cache or downloads them (:mod:`adpilot.datasets_fetch`)."""
    from adpilot.datasets_fetch import dev_data_dir

    found = dev_data_dir(sources)
    if found is None:
        raise InputError("cannot find the data folder ../shared/data; set ADPILOT_DATA_DIR, or "
                         "run `adpilot datasets fetch` (the loaders then read the cache)")
    return found


def _load(name: str, path: Path, schema: RecordSchema, mapping: dict[str, str],
          prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> tuple:
    raw = read_table(path)
    frame = prepare(raw.frame) if prepare else raw.frame
    resolved = ColumnMapping(mapping).resolve(schema, list(frame.columns), path=str(path))
    mapped = pd.DataFrame({canon: frame[src] for canon, src in resolved.items()})
    extra = frame.drop(columns=[c for c in resolved.values() if c in frame.columns])
    result = validate(mapped, schema, extra=extra)
    quarantine = pd.concat([raw.parse_errors, result.quarantine], ignore_index=True)
    source_rows = frame.iloc[result.kept_positions].reset_index(drop=True)
    return raw, result.kept, quarantine, source_rows


# --- reviews ---------------------------------------------------------------------------------

def load_womens_clothing_reviews(path: str | Path) -> DatasetLoad:
    """Women's E-Commerce Clothing Reviews: reviews, one customer per row (age), products."""
    from adpilot.data.schema import REVIEWS

    def prepare(df: pd.DataFrame) -> pd.DataFrame:
        df = df.rename(columns={"Unnamed: 0": "row_id", "": "row_id"})
        df["review_id"] = "wc" + df["row_id"].astype(str)
        df[C.USER_ID] = "wcu" + df["row_id"].astype(str)  # no user id: each row is one reviewer
        return df

    raw, reviews, quarantine, src = _load(
        "womens_clothing", Path(path), REVIEWS,
        {C.ID: "review_id", C.USER_ID: "user_id", C.PRODUCT_ID: "Clothing ID", C.TITLE: "Title",
         C.TEXT: "Review Text", C.RATING: "Rating"}, prepare)
    customers = pd.DataFrame({C.ID: reviews[C.USER_ID],
                              C.AGE: pd.to_numeric(src["Age"], errors="coerce").astype("Int64")})
    products = (pd.DataFrame({C.ID: reviews[C.PRODUCT_ID], C.CATEGORY: src["Class Name"],
                              "department": src["Department Name"],
                              "division": src["Division Name"]})
                .groupby(C.ID, as_index=False).agg(lambda s: s.mode().iat[0] if s.notna().any()
                                                   else None))
    return DatasetLoad("womens_clothing", str(path), raw.read, "reviews",
                       {"reviews": reviews, "customers": customers, "products": products},
                       quarantine)


def load_amazon_reviews(path: str | Path, name: str = "amazon") -> DatasetLoad:
    """Amazon 2018 5-core reviews (Fashion, All Beauty): real users with several reviews.

    Rows repeated across colour/size variants (same user, item and time) are quarantined as
    duplicate ids.
    """
    from adpilot.data.schema import REVIEWS

    def prepare(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        df["review_id"] = (df["reviewerID"].astype(str) + ":" + df["asin"].astype(str) + ":"
                           + df["unixReviewTime"].astype(str))
        df[C.CREATED_AT] = pd.to_datetime(df["unixReviewTime"], unit="s", errors="coerce")
        return df

    raw, reviews, quarantine, _ = _load(
        name, Path(path), REVIEWS,
        {C.ID: "review_id", C.USER_ID: "reviewerID", C.PRODUCT_ID: "asin", C.TITLE: "summary",
         C.TEXT: "reviewText", C.RATING: "overall", C.CREATED_AT: "created_at"}, prepare)
    products = pd.DataFrame({C.ID: reviews[C.PRODUCT_ID].unique()})
    customers = pd.DataFrame({C.ID: reviews[C.USER_ID].unique()})
    return DatasetLoad(name, str(path), raw.read, "reviews",
                       {"reviews": reviews, "customers": customers, "products": products},
                       quarantine)


def load_online_shopping_zh(path: str | Path) -> DatasetLoad:
    """online_shopping_10_cats (Chinese): review text, polarity label, category in attributes."""
    from adpilot.data.schema import REVIEWS

    raw, reviews, quarantine, _ = _load("online_shopping_zh", Path(path), REVIEWS,
                                     {C.TEXT: "review", C.POLARITY: "label"})
    return DatasetLoad("online_shopping_zh", str(path), raw.read, "reviews",
                       {"reviews": reviews}, quarantine)


# --- transactions ----------------------------------------------------------------------------

def load_online_retail(path: str | Path) -> DatasetLoad:
    """UCI Online Retail: transaction lines, plus products and customers derived from them.

    Lines without a CustomerID are kept (they count for products, not for profiles); lines with
    a negative unit price (bad-debt adjustments) are quarantined.
    """
    from adpilot.data.schema import TRANSACTIONS

    def prepare(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        cid = pd.to_numeric(df["CustomerID"], errors="coerce").astype("Int64")
        df["CustomerID"] = cid.astype("string")
        return df

    raw, tx, quarantine, src = _load(
        "online_retail", Path(path), TRANSACTIONS,
        {C.INVOICE: "InvoiceNo", C.USER_ID: "CustomerID", C.PRODUCT_ID: "StockCode",
         C.QUANTITY: "Quantity", C.UNIT_PRICE: "UnitPrice", C.TIME: "InvoiceDate"}, prepare)
    products = (pd.DataFrame({C.ID: tx[C.PRODUCT_ID], C.TITLE: src["Description"],
                              C.PRICE: tx[C.UNIT_PRICE]})
                .groupby(C.ID, as_index=False)
                .agg(title=(C.TITLE, lambda s: s.mode().iat[0] if s.notna().any() else None),
                     price=(C.PRICE, "median")))
    customers = (pd.DataFrame({C.ID: tx[C.USER_ID], C.REGION: src["Country"]})
                 .dropna(subset=[C.ID]).groupby(C.ID, as_index=False).agg(
                     region=(C.REGION, "first")))
    return DatasetLoad("online_retail", str(path), raw.read, "transactions",
                       {"transactions": tx, "products": products, "customers": customers},
                       quarantine)


# --- campaigns and copy tests: their own tables, validated the same way ----------------------

HILLSTROM = RecordSchema(name="hillstrom", id_field="id", id_prefix="h", fields=(
    FieldSpec("id"),
    FieldSpec("recency", "int", required=True, min=1, integer=True),
    FieldSpec("history_segment"),
    FieldSpec("history", "float", required=True, min=0),
    FieldSpec("mens", "int", required=True, min=0, max=1, integer=True),
    FieldSpec("womens", "int", required=True, min=0, max=1, integer=True),
    FieldSpec("zip_code", "choice", required=True, choices=("Urban", "Surburban", "Rural")),
    FieldSpec("newbie", "int", required=True, min=0, max=1, integer=True),
    FieldSpec("channel", "choice", required=True, choices=("Phone", "Web", "Multichannel")),
    FieldSpec("segment", "choice", required=True,
              choices=("Mens E-Mail", "Womens E-Mail", "No E-Mail")),
    FieldSpec("visit", "int", required=True, min=0, max=1, integer=True),
    FieldSpec("conversion", "int", required=True, min=0, max=1, integer=True),
    FieldSpec("spend", "float", required=True, min=0),
))

BANK_MARKETING = RecordSchema(name="bank_marketing", id_field="id", id_prefix="b", fields=(
    FieldSpec("id"),
    FieldSpec("age", "int", required=True, min=16, max=120, integer=True),
    FieldSpec("job"), FieldSpec("marital"), FieldSpec("education"), FieldSpec("default"),
    FieldSpec("balance", "float"), FieldSpec("housing"), FieldSpec("loan"),
    FieldSpec("contact", "choice", required=True, choices=("cellular", "telephone", "unknown")),
    FieldSpec("day", "int", min=1, max=31, integer=True), FieldSpec("month"),
    FieldSpec("duration", "int", min=0, integer=True),  # known only after the call: not a feature
    FieldSpec("campaign", "int", required=True, min=1, integer=True),
    FieldSpec("pdays", "int", integer=True), FieldSpec("previous", "int", min=0, integer=True),
    FieldSpec("poutcome"),
    FieldSpec("y", "choice", required=True, choices=("yes", "no")),
))

FACEBOOK_ADS = RecordSchema(name="facebook_ads", id_field="ad_id", id_prefix="f", fields=(
    FieldSpec("ad_id", required=True),
    FieldSpec("xyz_campaign_id"), FieldSpec("fb_campaign_id"),
    FieldSpec("age", required=True), FieldSpec("gender", "choice", required=True, choices=("M", "F")),
    FieldSpec("interest", "int", integer=True),
    FieldSpec("Impressions", "int", required=True, min=0, integer=True),
    FieldSpec("Clicks", "int", required=True, min=0, integer=True),
    FieldSpec("Spent", "float", required=True, min=0),
    FieldSpec("Total_Conversion", "int", required=True, min=0, integer=True),
    FieldSpec("Approved_Conversion", "int", required=True, min=0, integer=True),
))

UPWORTHY = RecordSchema(name="upworthy", id_field="archive_row", id_prefix="u", fields=(
    FieldSpec("archive_row", required=True),
    FieldSpec("clickability_test_id", required=True),
    FieldSpec("test_week", "int", required=True, integer=True, min=201301, max=201553),
    FieldSpec("headline", "text", required=True, max_chars=1000),
    FieldSpec("lede", "text"), FieldSpec("excerpt", "text"), FieldSpec("eyecatcher_id"),
    FieldSpec("impressions", "int", required=True, min=0, integer=True),
    FieldSpec("clicks", "int", required=True, min=0, integer=True),
    FieldSpec("significance", "float"), FieldSpec("first_place"), FieldSpec("winner"),
))


def _load_table(name: str, path: str | Path, schema: RecordSchema) -> DatasetLoad:
    mapping = {f.name: f.name for f in schema.fields if f.name != "id"}
    raw, kept, quarantine, _ = _load(name, Path(path), schema, mapping)
    return DatasetLoad(name, str(path), raw.read, name, {name: kept}, quarantine)


def load_hillstrom(path: str | Path) -> DatasetLoad:
    """MineThatData e-mail RCT: one row per customer, randomised segment, outcomes."""
    return _load_table("hillstrom", path, HILLSTROM)


def load_bank_marketing(path: str | Path) -> DatasetLoad:
    """UCI Bank Marketing (observational): client attributes, contact channel, outcome ``y``."""
    return _load_table("bank_marketing", path, BANK_MARKETING)


def load_facebook_ads(path: str | Path) -> DatasetLoad:
    """Facebook ad results per ad: audience, impressions, clicks, spend, conversions."""
    return _load_table("facebook_ads", path, FACEBOOK_ADS)


def load_upworthy_tests(path: str | Path) -> DatasetLoad:
    """Upworthy headline A/B tests: arms with impressions and clicks. Arms whose clicks exceed
    their impressions are quarantined."""
    load = _load_table("upworthy", path, UPWORTHY)
    arms = load.tables["upworthy"]
    impossible = (arms["clicks"] > arms["impressions"]).fillna(False).to_numpy()
    if impossible.any():
        extra = pd.DataFrame({C.Q_ROW: pd.NA, "line": pd.NA, C.Q_COLUMN: "clicks",
                              C.Q_VALUE: arms.loc[impossible, "clicks"].astype(str).to_numpy(),
                              C.Q_REASON: "clicks exceed impressions"})
        load.quarantine = pd.concat([load.quarantine, extra], ignore_index=True)
        load.tables["upworthy"] = arms.loc[~impossible].reset_index(drop=True)
    return load


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    file: str
    loader: Callable[[str | Path], DatasetLoad]


DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (
    DatasetInfo("womens_clothing", "reviews/womens_clothing_ecommerce_reviews.csv",
                load_womens_clothing_reviews),
    DatasetInfo("amazon_fashion", "reviews/amazon_fashion_5core.jsonl",
                lambda p: load_amazon_reviews(p, "amazon_fashion")),
    DatasetInfo("amazon_beauty", "reviews/amazon_beauty_5core.jsonl",
                lambda p: load_amazon_reviews(p, "amazon_beauty")),
    DatasetInfo("online_shopping_zh", "reviews/online_shopping_10_cats_zh.csv",
                load_online_shopping_zh),
    DatasetInfo("hillstrom", "campaigns/hillstrom_email_rct.csv", load_hillstrom),
    DatasetInfo("bank_marketing", "campaigns/bank_marketing_full.csv", load_bank_marketing),
    DatasetInfo("facebook_ads", "campaigns/facebook_ad_conversions.csv", load_facebook_ads),
    DatasetInfo("upworthy", "copy/upworthy_headline_tests.csv", load_upworthy_tests),
    DatasetInfo("online_retail", "transactions/uci_online_retail.parquet", load_online_retail),
)}


def load_dataset(name: str, source: str | Path | DataSources | None = None) -> DatasetLoad:
    """Load a registered data set by name, from the file ``source`` or, when ``source`` is a
    :class:`~adpilot.datasets_fetch.DataSources`, from wherever
    :func:`adpilot.datasets_fetch.locate` finds it there (data folder, cache, download); raises
    :class:`~adpilot.datasets_fetch.DatasetUnavailableError` when it cannot be had."""
    from adpilot.datasets_fetch import DataSources, locate

    if name not in DATASETS:
        raise InputError(f"unknown data set {name!r}; expected one of {', '.join(DATASETS)}")
    if source is None:
        raise TypeError(f"load_dataset({name!r}) needs a file or a DataSources (a shell builds "
                        "it with DataSources.from_settings(settings))")
    if isinstance(source, DataSources):
        return DATASETS[name].loader(locate(name, source))
    return DATASETS[name].loader(Path(source))
