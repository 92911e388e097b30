"""The ROI report for the API and the dashboard: a translation of
:func:`adpilot.optimization.roi_store.campaign_rois` (incremental against the control groups
where there are any, labelled *attributed* where there are none) into a table.

Prices per message come from the settings (``ADPILOT_PRICE_EMAIL``, ``_SMS``, ``_PUSH``,
``_LLM_1K_TOKENS``); ``cpm`` overrides the assumed media cost per 1,000 impressions of channels
that are not messages (social, search ads)."""

from __future__ import annotations

import pandas as pd

from adpilot.optimization.roi import DEFAULT_MEDIA_CPM, MESSAGE_CHANNELS, Prices
from adpilot.optimization.roi_store import campaign_rois, event_totals, roi_frame
from adpilot.store.sql import Store

DEFAULT_CPM = dict(DEFAULT_MEDIA_CPM)  # the media CPMs a request may override

__all__ = ["DEFAULT_CPM", "event_totals", "prices_for", "roi_from_store"]


def prices_for(settings=None, cpm: dict[str, float] | None = None) -> Prices:
    """Prices from ``settings`` (default: the environment now), media CPMs overridden by
    ``cpm`` (message channels in it are ignored: they have a price per message)."""
    if settings is None:
        from adpilot.config import get_settings

        settings = get_settings()
    media = {k: v for k, v in (cpm or {}).items() if k not in MESSAGE_CHANNELS}
    return Prices.from_settings(settings, media_cpm=media)


def roi_from_store(store: Store, names: dict[str, str] | None = None, *,
                   cpm: dict[str, float] | None = None, settings=None) -> pd.DataFrame:
    """One row per campaign (see :data:`adpilot.optimization.roi_store.ROI_COLUMNS`)."""
    return roi_frame(campaign_rois(store, names, prices=prices_for(settings, cpm)))
