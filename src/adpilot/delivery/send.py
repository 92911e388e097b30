"""Sending a batch: the rules decide who gets what now, the ledger makes it exactly once.

:func:`plan` sorts every message into one outcome without sending anything (the dry run);
:func:`send` then delivers the ones due now, each claimed in the ledger before its provider call,
retrying transient failures with backoff and jitter under a token-bucket rate limit. Every
message lands in exactly one bucket, so ``planned == sent + skipped + deferred + failed + unknown``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC

from adpilot.delivery.base import Channel, Message, Receipt
from adpilot.delivery.ledger import Ledger, _naive_utc
from adpilot.delivery.pacing import Clock, RetryPolicy, SystemClock, TokenBucket
from adpilot.delivery.rules import Rules

SEND = "send"  # the outcome of a message due now


@dataclass
class SendResult:
    """Counts of a send (the JSON of ``adpilot send``) and each message's outcome.

    ``outcomes``: message id → ``sent``, ``failed``, ``unknown``, ``skipped:<reason>`` or
    ``deferred:<reason>``; ``reasons``: message id → the provider's reason for failed/unknown.
    """

    planned: int = 0
    sent: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    deferred: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    unknown: int = 0
    outcomes: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"planned": self.planned, "sent": self.sent, "skipped": dict(self.skipped),
                "deferred": dict(self.deferred), "failed": self.failed, "unknown": self.unknown}

    @property
    def accounted(self) -> int:
        return (self.sent + sum(self.skipped.values()) + sum(self.deferred.values())
                + self.failed + self.unknown)


def plan(messages: Iterable[Message], ledger: Ledger, *, rules: Rules | None = None,
         clock: Clock | None = None, idempotent: bool = False) -> list[tuple[Message, str]]:
    """Each message with its outcome now: :data:`SEND`, ``skipped:<reason>``, ``deferred:<reason>``
    or ``unknown`` (in flight in an earlier run on a channel that is not ``idempotent``).

    Order of the checks: the ledger (already sent / unknown), approval, address, control group,
    consent, suppression, frequency cap, quiet hours. Nothing is written.
    """
    rules = rules or Rules()
    clock = clock or SystemClock()
    now = clock.now()
    batch = list(messages)
    kinds = sorted({m.channel for m in batch})
    consents = {k: ledger.consents(k) for k in kinds}
    suppressed = {k: ledger.suppressed(k) for k in kinds}
    recent = {k: ledger.recent_sends(k, now - rules.longest_window) for k in kinds}
    rows = ledger.rows(m.message_id for m in batch)
    seen: set[str] = set()
    out: list[tuple[Message, str]] = []
    for m in batch:
        row = rows.get(m.message_id)
        resending = row is not None and row.status in ("in_flight", "failed")
        if m.message_id in seen:
            outcome = "skipped:duplicate"
        elif row is not None and row.status == "sent":
            outcome = "skipped:already_sent"
        elif row is not None and (row.status == "unknown"
                                  or (row.status == "in_flight" and not idempotent)):
            outcome = "unknown"
        elif not m.approved:
            outcome = "skipped:not_approved"
        elif not (m.to or "").strip():
            outcome = "skipped:no_address"
        elif rules.in_holdout(m.user_id):
            outcome = "skipped:holdout"
        elif rules.in_campaign_holdout(m.campaign, m.user_id):
            outcome = "skipped:campaign_holdout"
        elif consents[m.channel].get(m.user_id) is not True:
            outcome = "skipped:no_consent"
        elif m.user_id in suppressed[m.channel]:
            outcome = "skipped:" + suppressed[m.channel][m.user_id]
        # a message being resent already counts in its own user's recent sends
        elif not resending and rules.over_cap(now, recent[m.channel].get(m.user_id, [])):
            outcome = "skipped:frequency_cap"
        elif rules.quiet(now, m.timezone):
            outcome = "deferred:quiet_hours"
        else:
            outcome = SEND
            if not resending:
                recent[m.channel].setdefault(m.user_id, []).append(_naive_utc(now.astimezone(UTC)))
        seen.add(m.message_id)
        out.append((m, outcome))
    return out


def tally(decided: list[tuple[Message, str]]) -> tuple[SendResult, list[Message], list[Message]]:
    """What :func:`plan` decided, counted: the result with ``skipped``/``deferred``/``unknown``
    filled in, the messages due, and the ones in flight from an earlier run (reported unknown)."""
    result = SendResult(planned=len(decided))
    skipped: Counter[str] = Counter()
    deferred: Counter[str] = Counter()
    due: list[Message] = []
    unknown: list[Message] = []
    for m, outcome in decided:
        if outcome == SEND:
            due.append(m)
            continue
        result.outcomes[m.message_id] = outcome
        kind, _, reason = outcome.partition(":")
        if kind == "skipped":
            skipped[reason] += 1
        elif kind == "deferred":
            deferred[reason] += 1
        else:
            unknown.append(m)
    result.unknown = len(unknown)
    result.skipped, result.deferred = dict(sorted(skipped.items())), dict(sorted(deferred.items()))
    return result, due, unknown


def send(messages: Iterable[Message], channel: Channel, ledger: Ledger, *, rules: Rules | None = None,
         clock: Clock | None = None, retry: RetryPolicy | None = None,
         rate_limit: TokenBucket | None = None, workers: int = 1, provider: str | None = None,
         on_progress: Callable[[int, int], None] | None = None) -> SendResult:
    """Send ``messages`` through ``channel`` under ``rules``, recording everything in ``ledger``.

    ``rate_limit`` is the provider's token bucket (shared by the ``workers`` threads); ``retry``
    governs transient failures (default: 4 attempts). ``on_progress(done, total)`` is called
    after each delivered message. A message whose provider call raises stays ``in_flight`` in
    the ledger (reported ``unknown`` by the next run) and the exception propagates.

    Two senders may run the same batch at once: the ledger's claim lets only one send each
    message (the other counts it ``skipped:claimed_elsewhere``, or ``unknown`` when it saw it in
    flight while planning; the sender that has it still records the final status).
    """
    clock = clock or SystemClock()
    retry = retry or RetryPolicy()
    provider = provider or channel.name
    decided = plan(messages, ledger, rules=rules, clock=clock, idempotent=channel.idempotent)
    # the control groups are recorded: incremental ROI compares against who was held out
    ledger.record_holdouts([(m, outcome.partition(":")[2]) for m, outcome in decided
                            if outcome in ("skipped:holdout", "skipped:campaign_holdout")], clock.now())
    result, due, unknown = tally(decided)
    skipped, deferred = Counter(result.skipped), Counter(result.deferred)
    for m in unknown:  # in flight when an earlier run died, on a channel that cannot deduplicate
        ledger.mark_unknown(m.message_id, "in flight when an earlier run stopped; not resent",
                            clock.now())

    def deliver_one(m: Message) -> tuple[Message, str, Receipt | None]:
        if not ledger.claim(m, provider, clock.now(), resend_in_flight=channel.idempotent):
            return m, "skipped:claimed_elsewhere", None  # another run took it meanwhile
        delays = retry.delays()
        while True:
            if rate_limit is not None:
                rate_limit.acquire()
            receipt = channel.deliver(m)
            if receipt.status == "failed" and receipt.transient and delays:
                clock.sleep(delays.pop(0))
                continue
            break
        ledger.finish(receipt, clock.now())
        if receipt.suppress:
            ledger.suppress(m.user_id, m.channel, receipt.suppress, clock.now(),
                            source=f"{provider}: {receipt.reason}")
        return m, receipt.status, receipt

    done = 0
    if workers > 1 and len(due) > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="adpilot-send") as pool:
            results = pool.map(deliver_one, due)
            delivered = []
            for item in results:
                delivered.append(item)
                done += 1
                if on_progress:
                    on_progress(done, len(due))
    else:
        delivered = []
        for m in due:
            delivered.append(deliver_one(m))
            done += 1
            if on_progress:
                on_progress(done, len(due))
    for m, status, receipt in delivered:
        result.outcomes[m.message_id] = status
        if status == "sent":
            result.sent += 1
        elif status == "failed":
            result.failed += 1
        elif status == "unknown":
            result.unknown += 1
        else:
            skipped[status.partition(":")[2]] += 1
        if receipt is not None and receipt.status != "sent" and receipt.reason:
            result.reasons[m.message_id] = receipt.reason
    result.skipped = dict(sorted(skipped.items()))
    result.deferred = dict(sorted(deferred.items()))
    return result
