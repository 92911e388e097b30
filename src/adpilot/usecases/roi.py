"""The ROI report: :func:`adpilot.optimization.roi_store.campaign_rois` (incremental against
the control groups where there are any, labelled *attributed* where there are none) as one
table per campaign, for the API and the dashboard alike.

The prices are an argument: a shell builds them from its settings
(:meth:`~adpilot.optimization.roi.Prices.from_settings`: ``ADPILOT_PRICE_EMAIL``, ``_SMS``,
``_PUSH``, ``_LLM_1K_TOKENS``); ``cpm`` overrides the assumed media cost per 1,000 impressions
of the channels that are not messages (social, search ads)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import pandas as pd

from adpilot.data import columns as C
from adpilot.optimization.roi import DEFAULT_MEDIA_CPM, MESSAGE_CHANNELS, Prices
from adpilot.optimization.roi_store import campaign_rois, roi_frame
from adpilot.store.sql import Store

DEFAULT_CPM = dict(DEFAULT_MEDIA_CPM)  # the media CPMs a request may override

__all__ = ["DEFAULT_CPM", "RoiReport", "roi_report", "with_media_cpm"]


def with_media_cpm(prices: Prices, cpm: Mapping[str, float] | None) -> Prices:
    """``prices`` with the media CPMs of ``cpm`` (message channels in it are ignored: they have
    a price per message)."""
    media = {k: v for k, v in (cpm or {}).items() if k not in MESSAGE_CHANNELS}
    return replace(prices, media_cpm={**prices.media_cpm, **media}) if media else prices


@dataclass(frozen=True)
class RoiReport:
    """One row per campaign (see :data:`adpilot.optimization.roi_store.ROI_COLUMNS`), the
    media CPMs it assumed and the prices it used."""

    table: pd.DataFrame
    cpm: dict[str, float]
    prices: Prices


def roi_report(store: Store, campaigns: pd.DataFrame, prices: Prices, *,
               cpm: float | None = None) -> RoiReport:
    """The ROI of every campaign in ``campaigns`` (columns id, name) at ``prices``; ``cpm``: one
    cost per 1,000 impressions for every media channel instead of :data:`DEFAULT_CPM`."""
    costs = dict.fromkeys(DEFAULT_CPM, cpm) if cpm is not None else None
    prices = with_media_cpm(prices, costs)
    names = dict(zip(campaigns[C.ID], campaigns["name"], strict=True))
    table = roi_frame(campaign_rois(store, names, prices=prices))
    return RoiReport(table, costs or dict(DEFAULT_CPM), prices)
