"""Send-time rules: frequency caps, quiet hours in the recipient's zone, and the global control group."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Rules:
    """What the sender enforces besides consent and suppression (always enforced).

    ``caps``: per user and channel across campaigns, window → most messages in it (rolling
    windows ending now; default at most 1 a day and 3 a week). ``quiet_start``/``quiet_end``:
    local hours in which a message is deferred, not dropped (default 21:00–08:00; equal times
    turn quiet hours off). ``holdout_share``: the share of users in the stable global control
    group, chosen by hashing the user id with ``holdout_salt``; they never receive marketing.
    ``campaign_holdout_share``: a further share held out of each campaign (hashing campaign and
    user, so each campaign holds out different customers).
    """

    caps: dict[timedelta, int] = field(default_factory=lambda: {timedelta(days=1): 1,
                                                                 timedelta(days=7): 3})
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    default_timezone: str = "UTC"
    holdout_share: float = 0.0
    holdout_salt: str = "adpilot-global-control"
    campaign_holdout_share: float = 0.0

    def __post_init__(self) -> None:
        for name in ("holdout_share", "campaign_holdout_share"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        for window, limit in self.caps.items():
            if window <= timedelta(0) or limit < 0:
                raise ValueError(f"frequency cap {window} → {limit} must be a positive window "
                                 "and a non-negative count")
        ZoneInfo(self.default_timezone)

    @property
    def longest_window(self) -> timedelta:
        return max(self.caps, default=timedelta(0))

    def in_holdout(self, user_id: str) -> bool:
        """Whether ``user_id`` is in the global control group (stable across runs and machines)."""
        if self.holdout_share <= 0:
            return False
        digest = hashlib.sha256(f"{self.holdout_salt}\x1f{user_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2 ** 64 < self.holdout_share

    def in_campaign_holdout(self, campaign: str, user_id: str) -> bool:
        """Whether ``user_id`` is held out of ``campaign`` (stable, independent of the global group)."""
        if self.campaign_holdout_share <= 0:
            return False
        digest = hashlib.sha256(f"campaign\x1f{campaign}\x1f{user_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2 ** 64 < self.campaign_holdout_share

    def quiet(self, now: datetime, timezone: str | None) -> bool:
        """Whether ``now`` falls in quiet hours in ``timezone`` (the default zone when None)."""
        if self.quiet_start == self.quiet_end:
            return False
        local = now.astimezone(ZoneInfo(timezone or self.default_timezone)).time()
        if self.quiet_start < self.quiet_end:
            return self.quiet_start <= local < self.quiet_end
        return local >= self.quiet_start or local < self.quiet_end

    def over_cap(self, now: datetime, recent: list[datetime]) -> bool:
        """Whether one more message now would pass a cap, given the naive-UTC times of ``recent`` ones."""
        naive_now = now.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
        for window, limit in self.caps.items():
            since = naive_now - window
            if sum(1 for at in recent if at > since) >= limit:
                return True
        return False
