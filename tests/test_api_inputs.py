"""Hostile inputs and internal paths through the real API (issue 17 items 8, 9 and 11): an upload
named "..", an admin path with a NUL byte, server paths in upload replies, the overview and job
errors, and campaign names that are not URL-safe."""

from __future__ import annotations

import csv
import io
import json

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402
from test_api import auth, keys_for, make_settings, wait_job  # noqa: E402

from adpilot.api.app import create_app  # noqa: E402
from adpilot.errors import InputError  # noqa: E402
from adpilot.pipeline import sample_dir  # noqa: E402

BAD_CUSTOMERS = ("customer_id,age,gender,region,signup_date,preferred_language\n"
                 "C1,49,F,London,2023-03-23,en\n"
                 "C2,not-an-age,F,London,2023-03-23,en\n"
                 "C3,=1+1,M,Paris,2023-03-24,en\n")


@pytest.fixture
def client(tmp_path, db_url):
    keys = keys_for(db_url)
    settings = make_settings(tmp_path, db_url, ingest_roots=[str(sample_dir())])
    with TestClient(create_app(settings, dashboard=False), raise_server_exceptions=False) as c:
        yield c, keys, settings


def no_server_paths(text: str, *folders) -> None:
    assert "adpilot-upload-" not in text, text
    for folder in folders:
        assert str(folder) not in text, f"{folder} leaked: {text[:300]}"


@pytest.mark.parametrize("filename", [b"..", b".", b"a/..", b"..\\", b"x\x00.csv", b""])
def test_unusable_upload_names_are_4xx_with_a_reason(client, filename):
    """The multipart body is written by hand: httpx would percent-encode a NUL."""
    c, keys, _ = client
    body = (b'--B\r\nContent-Disposition: form-data; name="file"; filename="' + filename
            + b'"\r\nContent-Type: text/csv\r\n\r\n' + BAD_CUSTOMERS.encode() + b"\r\n--B--\r\n")
    r = c.post("/v1/ingest/customers", content=body,
               headers={**auth(keys["write"]), "Content-Type": "multipart/form-data; boundary=B"})
    assert r.status_code == 422, r.text
    assert "file name" in r.json()["error"]["message"]


def test_upload_paths_become_names_and_the_quarantine_is_served(client, tmp_path):
    c, keys, settings = client
    r = c.post("/v1/ingest/customers", headers=auth(keys["write"]),
               files={"file": ("../../etc/customers.csv", BAD_CUSTOMERS.encode(), "text/csv")})
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["source"] == "customers.csv" and s["quarantined"] == 2
    assert "/" not in s["quarantine_file"] and s["quarantine_file"].endswith(".csv")
    no_server_paths(r.text, tmp_path, settings.quarantine_dir)
    got = c.get(s["quarantine_url"], headers=auth(keys["read"]))
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert {r["value"] for r in rows} == {"not-an-age", "'=1+1"}  # formula-escaped (item 7)
    for bad in ("..%2F..%2Fetc%2Fpasswd", "..", ".hidden.csv", "nope.csv"):
        assert c.get(f"/v1/quarantine/{bad}", headers=auth(keys["read"])).status_code == 404
    assert c.get(s["quarantine_url"]).status_code == 401

    overview = c.get("/v1/overview", headers=auth(keys["read"]))
    assert overview.status_code == 200
    no_server_paths(overview.text, tmp_path, settings.quarantine_dir)
    run = overview.json()["ingest_runs"][-1]
    assert run["source"] == "customers.csv"
    assert run["details"]["quarantine_file"] == s["quarantine_file"]


def test_upload_errors_name_the_file_not_the_temporary_folder(client, tmp_path):
    c, keys, _ = client
    r = c.post("/v1/ingest/customers", headers=auth(keys["write"]),
               files={"file": ("mine.csv", b"nothing,useful\n1,2\n", "text/csv")})
    assert 400 <= r.status_code < 500, r.text
    assert "mine.csv" in r.text
    no_server_paths(r.text, tmp_path)


def test_admin_path_with_a_nul_byte_is_4xx(client):
    c, keys, _ = client
    for path in (str(sample_dir() / "products.csv") + "\x00", "\x00", str(sample_dir()) + "/a\x00b",
                 str(sample_dir() / ("x" * 300 + ".csv"))):
        r = c.post("/v1/ingest/products/path", headers=auth(keys["admin"]), json={"path": path})
        assert 400 <= r.status_code < 500, (repr(path), r.status_code, r.text)
        assert r.json()["error"]["message"]
    ok = c.post("/v1/ingest/products/path", headers=auth(keys["admin"]),
                json={"path": str(sample_dir() / "products.csv")})
    assert ok.status_code == 200 and ok.json()["source"] == "products.csv"
    assert str(sample_dir()) not in ok.text


def test_job_errors_name_files_not_server_folders(client):
    c, keys, _ = client
    state = c.app.state.adpilot

    def fails(progress) -> dict:
        raise InputError("cannot find the data folder ../shared/data; set ADPILOT_DATA_DIR",
                         path="/srv/adpilot/private/reviews.csv")

    job = wait_job(c, keys["read"], state.jobs.submit("profile", fails, {}))
    assert job["status"] == "failed"
    assert job["error"] == ("reviews.csv: cannot find the data folder data; "
                            "set ADPILOT_DATA_DIR")
    assert "/srv" not in json.dumps(c.get("/v1/jobs", headers=auth(keys["read"])).json())


@pytest.mark.parametrize("name, readable", [
    ("../../x/y", "x-y"),
    ("spring\x00\u202eevil/../sale", "springevil-sale"),  # controls dropped, not spaces
    ("春季上新", "春季上新"),
    ("春季上新 · Ｓｐｒｉｎｇ 2025!", "春季上新-spring-2025"),
])
def test_campaign_ids_are_slugs_reachable_by_url(client, name, readable):
    c, keys, _ = client
    created = c.post("/v1/campaigns", headers=auth(keys["write"]),
                     json={"name": name, "variants": [{"variant": "A"}, {"variant": "B"}]})
    assert created.status_code == 201, created.text
    cid = created.json()["campaign"]
    assert cid.rsplit("-", 1)[0] == readable and len(cid.rsplit("-", 1)[1]) == 8
    got = c.get(f"/v1/campaigns/{cid}", headers=auth(keys["read"]))
    assert got.status_code == 200, got.text
    shown = got.json()["name"]
    assert "\x00" not in shown and "\u202e" not in shown
    assert shown == name.replace("\x00", "").replace("\u202e", "")


def test_campaign_name_with_nothing_visible_is_4xx(client):
    c, keys, _ = client
    r = c.post("/v1/campaigns", headers=auth(keys["write"]),
               json={"name": "\x00\u202e", "variants": [{"variant": "A"}]})
    assert r.status_code == 400 and "visible" in r.json()["error"]["message"]
