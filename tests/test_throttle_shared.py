"""Login and API-key throttling shared through the store (issue 17, item 5): two app instances
on one store (two uvicorn workers, two servers) count the same failures and honour the same
lockouts, which expire; two processes counting at once lose no failure."""

from __future__ import annotations

import re
from functools import partial

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402
from test_api import auth, keys_for, make_settings  # noqa: E402

from adpilot.api.app import create_app  # noqa: E402
from adpilot.api.throttle import AuthThrottle  # noqa: E402
from adpilot.api.throttle_store import StoredFailureCounter  # noqa: E402
from adpilot.store import Store  # noqa: E402

THROTTLE = {"auth_max_failures": 3, "auth_max_failures_per_client": 50,
            "auth_window_seconds": 60, "auth_lockout_seconds": 30.0}


class Clock:
    """A test clock both throttles read (wall-clock seconds)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def throttle(store: Store, clock: Clock) -> AuthThrottle:
    return AuthThrottle(max_failures=3, max_failures_per_client=50, window=60, lockout=30,
                        max_lockout=600, clock=clock,
                        counter=partial(StoredFailureCounter, store, cache_seconds=0))


def test_failures_counted_by_one_process_lock_the_account_in_another(store):
    clock = Clock()
    a, b = throttle(Store(store.url), clock), throttle(Store(store.url), clock)
    account = ("user", "admin")
    a.failed("10.0.0.1", account)
    b.failed("10.0.0.2", account)
    assert a.retry_after("10.0.0.3", account) == 0  # two failures: not yet
    a.failed("10.0.0.1", account)  # the third, counted across both
    assert b.retry_after("10.0.0.9", account) == 30 and a.retry_after("10.0.0.9", account) == 30
    clock.now += 29.5
    assert b.retry_after("10.0.0.9", account) == 1
    clock.now += 1
    assert b.retry_after("10.0.0.9", account) == 0  # the lockout expired
    for _ in range(3):  # the next lockout, counted on b, is twice as long, and a sees it
        b.failed("10.0.0.2", account)
    assert a.retry_after("10.0.0.3", account) == 60
    clock.now += 61
    a.failed("10.0.0.1", account)
    b.succeeded(account)  # a success forgets the account's failures everywhere
    a.failed("10.0.0.1", account)
    a.failed("10.0.0.1", account)
    assert b.retry_after("10.0.0.3", account) == 0


def login(client: TestClient, password: str) -> int:
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post("/login", data={"csrf": csrf, "username": "admin", "password": password,
                                       "next": "/campaigns"}, follow_redirects=False).status_code


def test_two_app_instances_on_one_store_share_lockouts(tmp_path, db_url):
    keys = keys_for(db_url)
    first = create_app(make_settings(tmp_path, db_url, **THROTTLE), dashboard=True)
    second = create_app(make_settings(tmp_path, db_url, **THROTTLE), dashboard=True)
    with TestClient(first) as one, TestClient(second) as two:
        assert [login(one, f"guess-{i}") for i in range(3)] == [303] * 3
        assert login(two, "pw-for-tests") == 429  # locked on the other instance too
        assert login(one, "pw-for-tests") == 429
        # API keys likewise: wrong secrets for one key id on the first lock it on the second
        key_id = keys["read"].split("_")[1]
        for i in range(3):
            assert one.get("/v1/campaigns", headers=auth(f"adp_{key_id}_no{i}")).status_code == 401
        refused = two.get("/v1/campaigns", headers=auth(keys["read"]))
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
