"""Contact details and consent records of the built-in sample's customers (for make_sample.py).

Every address is fictional by construction: e-mail domains are ``example.com`` and
``example.net`` (reserved for documentation, RFC 2606) and every phone number is a North
American ``555-01xx`` number (reserved for fiction), whatever the customer's city. Time zones
follow the customer's region. A generator of its own (``random.Random(20)``) keeps the other
sample files exactly as they were.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

rng = random.Random(20)

TIMEZONES = {
    "Shanghai": "Asia/Shanghai", "Beijing": "Asia/Shanghai", "Guangzhou": "Asia/Shanghai",
    "Chengdu": "Asia/Shanghai", "Hangzhou": "Asia/Shanghai", "Shenzhen": "Asia/Shanghai",
    "London": "Europe/London", "New York": "America/New_York", "Toronto": "America/Toronto",
    "Sydney": "Australia/Sydney",
}
AREA_CODES = ("202", "212", "312", "415", "416", "617")
DOMAINS = {"en": "example.com", "zh": "example.net"}

NO_EMAIL = 1        # customers without an e-mail address
NO_PHONE = 4        # … without a phone number
EMAIL_OPT_OUT = 2   # with an address but no e-mail consent ever given
SMS_SHARE = 0.7     # share of customers with a phone who granted SMS at checkout
PUSH_SHARE = 0.5    # share who granted push in the app
WITHDRAWN = {"email": 3, "sms": 2, "push": 1}
WITHDRAW_SOURCE = {"email": "preference_center", "sms": "sms_reply", "push": "app_settings"}
REGRANTED = 1       # e-mail withdrawals granted again later (the latest record decides)


def contact(cid: str, lang: str, region: str, n: int) -> tuple[str, str, str]:
    """E-mail, E.164 phone and IANA time zone of customer ``cid`` (the n-th, from 1)."""
    email = f"{cid.lower()}@{DOMAINS[lang]}"
    phone = f"+1{AREA_CODES[n % len(AREA_CODES)]}5550{100 + n:03d}"
    return email, phone, TIMEZONES[region]


def _at(day: date, lo_hour: int = 8, hi_hour: int = 21) -> datetime:
    return datetime.combine(day, time(rng.randint(lo_hour, hi_hour), rng.randint(0, 59),
                                      rng.randint(0, 59)))


def iso_utc(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def contacts_and_consents(customers: list[tuple[str, str, str, date]]
                          ) -> tuple[dict[str, tuple[str, str, str]], list[list[str]]]:
    """For (customer id, language, region, sign-up date) in id order: id → (email, phone,
    timezone) with some left empty, and consent rows (customer_id, channel, granted, at,
    source) in time order, some withdrawn later."""
    ids = [c[0] for c in customers]
    no_email = set(rng.sample(ids, NO_EMAIL))
    no_phone = set(rng.sample([i for i in ids if i not in no_email], NO_PHONE))
    details: dict[str, tuple[str, str, str]] = {}
    rows: list[tuple[datetime, str, str, bool, str]] = []
    email_ok = [i for i in ids if i not in no_email]
    opted_out = set(rng.sample(email_ok, EMAIL_OPT_OUT))
    for n, (cid, lang, region, signup) in enumerate(customers, start=1):
        email, phone, zone = contact(cid, lang, region, n)
        details[cid] = ("" if cid in no_email else email, "" if cid in no_phone else phone, zone)
        start = datetime.combine(signup, time())
        if cid not in no_email and cid not in opted_out:
            rows.append((_at(signup), cid, "email", True, "signup_form"))
        if cid not in no_phone and rng.random() < SMS_SHARE:
            rows.append((_at((start + timedelta(days=rng.randint(1, 60))).date()), cid, "sms",
                         True, "checkout"))
        if rng.random() < PUSH_SHARE:
            rows.append((_at((start + timedelta(days=rng.randint(0, 90))).date()), cid, "push",
                         True, "app"))
    granted = {(cid, ch): t for t, cid, ch, ok, _ in rows if ok}
    regrant_left = REGRANTED
    for channel, k in WITHDRAWN.items():
        for cid in sorted(rng.sample(sorted(c for c, ch in granted if ch == channel), k)):
            when = _at(date(2025, 5, 1) + timedelta(days=rng.randint(0, 150)))
            when = max(when, granted[(cid, channel)] + timedelta(days=1))
            rows.append((when, cid, channel, False, WITHDRAW_SOURCE[channel]))
            if channel == "email" and regrant_left:
                regrant_left -= 1
                rows.append((when + timedelta(days=rng.randint(10, 40)), cid, channel, True,
                             "preference_center"))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return details, [[cid, ch, "true" if ok else "false", iso_utc(t), source]
                     for t, cid, ch, ok, source in rows]
