"""The explicit training step of the models the guardrails and scorecard load, for whichever
adpilot checkout is first on the path: the copy evaluations run today's code beside older
source trees (``--src``/``--baseline-src``), which set their models up in three ways."""

from __future__ import annotations


def ensure_checkout_models() -> None:
    """Build (or find) the copy models as the imported checkout does it: with its data sources
    (issue 19 on), with the model store alone (before), or not at all (a checkout that trains
    them on first use)."""
    try:
        from adpilot.artifacts import ModelStore
        from adpilot.models_fetch import ensure_copy_models
    except ImportError:  # an older checkout trains them on first use
        return
    from adpilot.config import get_settings

    store = ModelStore.from_settings(get_settings())
    try:
        from adpilot.datasets_fetch import DataSources
    except ImportError:  # a checkout before DataSources (issue 19)
        ensure_copy_models(store)
    else:
        ensure_copy_models(store, sources=DataSources.from_settings(get_settings()))


def model_store_option(generator_class) -> dict:
    """``{"store": <the settings' ModelStore>}`` where the generator takes one (a checkout
    before issue 19's ModelStore threading found the store from the settings itself)."""
    import inspect

    if "store" not in inspect.signature(generator_class).parameters:
        return {}
    from adpilot.artifacts import ModelStore
    from adpilot.config import get_settings

    return {"store": ModelStore.from_settings(get_settings())}
