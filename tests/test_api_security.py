"""Every route refuses requests without a key or with too weak a scope; keys are stored hashed;
dashboard sessions are signed cookies with CSRF-protected forms; CORS is off by default."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("fastapi")

from fastapi.routing import APIRoute  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import select  # noqa: E402
from test_api import TemplateLLM, auth, keys_for, make_settings  # noqa: E402

from adpilot.api.app import create_app  # noqa: E402
from adpilot.api.keys import API_KEYS, revoke_key  # noqa: E402
from adpilot.store import Store  # noqa: E402

# tracked links and one-click unsubscribe are followed from messages: signed tokens, no key
PUBLIC = {"/health", "/login", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json",
          "/t/c/{token}", "/t/o/{token}", "/u/{token}"}
RANK = {"read": 0, "write": 1, "admin": 2}


def api_routes(routes) -> list[APIRoute]:
    """Every APIRoute, also inside routers that newer FastAPI keeps as included-router nodes
    (their routers here carry their own prefix, so the paths are complete)."""
    out = []
    for route in routes:
        if isinstance(route, APIRoute):
            out.append(route)
        elif hasattr(route, "original_router"):
            out.extend(api_routes(route.original_router.routes))
    return out


def required_scope(route: APIRoute) -> str | None:
    for dep in route.dependant.dependencies:
        scope = getattr(dep.call, "required_scope", None)
        if scope:
            return scope
    return None


@pytest.fixture
def secured(tmp_path, db_url):
    keys = keys_for(db_url)
    # the route walk sends a bad key to every route: no throttling here (test_api_hardening.py)
    settings = make_settings(tmp_path, db_url, auth_max_failures=0, auth_max_failures_per_client=0)
    app = create_app(settings, llm_backend=TemplateLLM())
    with TestClient(app, follow_redirects=False) as client:
        yield app, client, keys


def test_every_route_needs_a_key_and_the_right_scope(secured):
    app, client, keys = secured
    checked = 0
    for route in api_routes(app.routes):
        if route.path in PUBLIC:
            continue
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        for method in route.methods - {"HEAD"}:
            if route.path.startswith("/v1/"):
                scope = required_scope(route)
                assert scope, f"{method} {route.path} declares no scope"
                none = client.request(method, path, json={})
                assert none.status_code == 401, (method, path, none.text)
                assert none.json()["error"]["code"] == "unauthorized"
                bogus = client.request(method, path, json={}, headers=auth("adp_nope_nope"))
                assert bogus.status_code == 401
                for have, key in keys.items():
                    if RANK[have] < RANK[scope]:
                        weak = client.request(method, path, json={}, headers=auth(key))
                        assert weak.status_code == 403, (method, path, have, weak.text)
            else:  # dashboard pages: no session → the login page
                page = client.request(method, path)
                assert page.status_code in (303, 403), (method, path, page.status_code)
                if page.status_code == 303:
                    assert page.headers["location"].startswith("/login")
            checked += 1
    assert checked > 30
    assert client.get("/health").status_code == 200


def test_keys_are_hashed_revocable_and_compared_whole(secured, db_url):
    _, client, keys = secured
    store = Store(db_url)
    with store.engine.connect() as conn:
        rows = conn.execute(select(API_KEYS)).all()
    stored = " ".join(str(v) for r in rows for v in r)
    for key in keys.values():
        assert key not in stored and key.split("_", 2)[2] not in stored
    read = keys["read"]
    assert client.get("/v1/campaigns", headers=auth(read)).status_code == 200
    assert client.get("/v1/campaigns", headers={"X-API-Key": read}).status_code == 200
    assert client.get("/v1/campaigns", headers=auth(read[:-1] + "x")).status_code == 401
    assert client.get("/v1/campaigns", headers=auth(keys["write"][:20] + read[20:])).status_code == 401
    key_id = read.split("_")[1]
    revoke_key(store, key_id)
    client.app.state.adpilot.keys._cache.clear()  # skip the few seconds of cache in the test
    assert client.get("/v1/campaigns", headers=auth(read)).status_code == 401
    listed = client.get("/v1/keys", headers=auth(keys["admin"])).json()["items"]
    assert {k["id"] for k in listed} >= {key_id} and "hash" not in listed[0]
    store.dispose()


def test_dashboard_login_session_and_csrf(secured):
    _, client, keys = secured
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    wrong = client.post("/login", data={"csrf": token, "username": "admin", "password": "no"})
    assert wrong.status_code == 303 and "error=1" in wrong.headers["location"]
    no_csrf = client.post("/login", data={"username": "admin", "password": "pw-for-tests"})
    assert no_csrf.status_code == 403
    ok = client.post("/login", data={"csrf": token, "username": "admin",
                                     "password": "pw-for-tests", "next": "/campaigns"})
    assert ok.status_code == 303 and ok.headers["location"] == "/campaigns"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert client.get("/campaigns").status_code == 200
    # a form without the session's CSRF token is refused
    assert client.post("/studio/approve", data={"count": "0"}).status_code == 403
    assert client.post("/logout", data={}).status_code == 403
    # a read key logs in but cannot change anything
    client.cookies.clear()
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    client.post("/login", data={"csrf": token, "api_key": keys["read"]})
    assert client.get("/").status_code == 200
    assert client.post("/studio", data={"csrf": "x"}).status_code == 403
    zh = client.get("/?lang=zh")
    assert "数据概览" in zh.text and "lang=zh" in zh.headers["set-cookie"]
    assert "数据概览" in client.get("/").text  # the cookie keeps the language


def test_cors_off_by_default_and_configurable(tmp_path, db_url):
    keys_for(db_url)
    preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    with TestClient(create_app(make_settings(tmp_path, db_url), dashboard=False)) as client:
        r = client.options("/v1/decide", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
    settings = make_settings(tmp_path, db_url, cors_origins=["https://shop.example"])
    with TestClient(create_app(settings, dashboard=False)) as client:
        r = client.options("/v1/decide", headers=preflight)
        assert r.headers["access-control-allow-origin"] == "https://shop.example"
