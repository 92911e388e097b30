"""API keys for the HTTP API and dashboard: the store's key functions
(:mod:`adpilot.store.keys`), under the name the API's modules import them by."""

from adpilot.store.keys import (
    API_KEYS,
    SCOPES,
    KeyInfo,
    KeyVerifier,
    create_key,
    list_keys,
    revoke_key,
    scope_allows,
)

__all__ = ["API_KEYS", "SCOPES", "KeyInfo", "KeyVerifier", "create_key", "list_keys",
           "revoke_key", "scope_allows"]
