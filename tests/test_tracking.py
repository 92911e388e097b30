"""Tracking that closes the loop (issue 20): e-mails rendered through a real SMTP server carry
signed tracked links, an open pixel and a one-click unsubscribe link; ``adpilot serve``'s app on
a real uvicorn server redirects, counts the click and the open in the campaign report (after the
events inbox processed them), unsubscribes without cookies, and refuses tampered tokens."""

from __future__ import annotations

import csv
import email
import json
import re
import time
import uuid

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("aiosmtpd")
import httpx  # noqa: E402
from delivery_servers import SMTPServer, free_port  # noqa: E402
from test_api import Server, auth, keys_for, make_settings  # noqa: E402
from test_send_cli import noon_zone  # noqa: E402

from adpilot.api.app import create_app  # noqa: E402
from adpilot.data.ingest import ingest_file  # noqa: E402
from adpilot.delivery import Message, get_channel  # noqa: E402
from adpilot.delivery.campaign_send import send_campaign  # noqa: E402
from adpilot.delivery.ledger import Ledger  # noqa: E402
from adpilot.delivery.links import LinkClaims, Tracker, sign, verify  # noqa: E402
from adpilot.delivery.mime import Sender  # noqa: E402
from adpilot.delivery.send import send  # noqa: E402
from adpilot.optimization.campaigns import Campaigns  # noqa: E402
from adpilot.store import Store  # noqa: E402

SECRET = "test-link-secret"
SHOP = "https://shop.example/linen?c=spring&src=mail"
COPIES = {"en": {"subject": "Spring is here", "lang": "en", "passed": True,
                 "body": f"Our new linen shirts are in: {SHOP}. See you soon."},
          "zh": {"subject": "春季上新", "lang": "zh", "passed": True,
                 "body": f"新款亚麻衬衫到货：{SHOP} 欢迎选购。"}}


class PortServer(Server):
    """:class:`test_api.Server` on a port chosen before the app is built (the app's public URL
    names it)."""

    def __init__(self, app, port: int) -> None:
        import threading

        import uvicorn

        self.port, self.url = port, f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)


def customers(tmp_path, store: Store) -> None:
    """An English- and a Chinese-speaking customer, both with e-mail consent, awake now."""
    with (tmp_path / "customers.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["customer_id", "age", "region", "preferred_language", "email", "timezone"])
        w.writerow(["U1", 30, "London", "en", "u1@example.test", noon_zone()])
        w.writerow(["U2", 31, "上海", "zh", "u2@example.test", noon_zone()])
    with (tmp_path / "consents.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["customer_id", "channel", "granted", "at", "source"])
        for u in ("U1", "U2"):
            w.writerow([u, "email", "true", "2026-01-05T10:00:00Z", "signup"])
        w.writerow(["U2", "sms", "true", "2026-01-05T10:00:00Z", "signup"])
    for kind in ("customers", "consents"):
        got = ingest_file(kind, tmp_path / f"{kind}.csv", store=store)
        assert got.kept == got.read, got.summary()


def parts(raw: bytes) -> dict[str, str]:
    msg = email.message_from_bytes(raw)
    out = {"to": msg["To"], "unsubscribe": msg["List-Unsubscribe"].strip("<>"),
           "post": msg["List-Unsubscribe-Post"]}
    for part in msg.walk():
        if part.get_content_type() in ("text/plain", "text/html"):
            out[part.get_content_type()] = part.get_payload(decode=True).decode("utf-8")
    return out


def visible(page: str) -> list[str]:
    """The page's heading, paragraphs and button texts."""
    return re.findall(r"<(?:h1|p|button)[^>]*>([^<]*)<", page)


def wait_for(fn, what: str, deadline_s: float = 120.0):
    """Call ``fn`` until it returns something truthy: the inbox drains in the background."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = fn()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} not seen within {deadline_s} s")


def variant_row(report: dict, variant: str) -> dict | None:
    return next((r for r in report.get("variants", []) if r["variant"] == variant), None)


def test_tracked_links_open_pixel_and_one_click_unsubscribe(tmp_path, db_url):
    keys = keys_for(db_url)
    store = Store(db_url).init()
    customers(tmp_path, store)
    cid = Campaigns(store).create("Spring 春季", ["en", "zh"], channel="email", policy="fixed",
                                  copies=COPIES, approved=True)
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    sender = Sender(from_addr="Acme <news@acme.example>", postal_address="1 Market St",
                    public_url=public, link_secret=SECRET)
    with SMTPServer() as smtp:
        channel = get_channel("smtp", url=smtp.url, sender=sender)
        result = send_campaign(store, cid, channel)
        channel.close()
        assert result.to_dict()["sent"] == 2, result.to_dict()
        mails = {p["to"]: p for p in map(parts, (r.content for r in smtp.handler.received))}
    en, zh = mails["u1@example.test"], mails["u2@example.test"]
    link = re.search(re.escape(public) + r"/t/c/[\w-]+\.[\w-]+", en["text/plain"], re.ASCII).group()
    assert SHOP not in en["text/plain"] and SHOP not in en["text/html"]  # every copy is tracked
    assert f'href="{link}"' in en["text/html"]
    pixel = re.search(r'<img src="([^"]+/t/o/[^"]+)"', en["text/html"]).group(1)
    assert en["unsubscribe"].startswith(public + "/u/") and en["post"] == "List-Unsubscribe=One-Click"
    assert en["unsubscribe"] in en["text/plain"]  # the footer's link is the header's

    settings = make_settings(tmp_path, db_url, public_url=public, link_secret=SECRET,
                             events_worker_process=False)
    with PortServer(create_app(settings), port), httpx.Client(timeout=30) as http:
        # the click: a redirect to exactly the signed URL, twice (a second click is no new event)
        for _ in range(2):
            r = http.get(link)
            assert r.status_code == 302 and r.headers["location"] == SHOP, r.text
            assert "no-store" in r.headers["cache-control"]
        # tampering anywhere gives the same 404 page and no redirect
        payload, mac = link.rsplit("/", 1)[1].split(".")
        flipped = payload[:-3] + ("A" if payload[-3] != "A" else "B") + payload[-2:]
        forged = sign(LinkClaims("click", "0" * 32, cid, "en", "U1", "email", url="https://evil.example"),
                      "not-the-secret")
        pages = set()
        for bad in (f"{flipped}.{mac}", f"{payload}.{mac[:-1]}", forged, "x", pixel.rsplit("/", 1)[1]):
            for path in ("/t/c/", "/u/"):
                r = http.get(f"{public}{path}{bad}")
                assert r.status_code == 404 and "location" not in r.headers, (path, bad)
                pages.add(r.text)
        assert len(pages) == 1  # the same page whatever is wrong: nothing to learn from it
        assert visible(pages.pop()) == ["Link not valid · 链接无效",
                                        "This link is not valid or has been changed.",
                                        "此链接无效或已被修改。"]
        # the open pixel: a GIF that no cache keeps
        r = http.get(pixel)
        assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
        assert r.content.startswith(b"GIF89a") and "no-store" in r.headers["cache-control"]

        def counted():
            row = variant_row(Campaigns(store).report(cid), "en")
            return row if row and row["clicks"] >= 1 and row["impressions"] >= 1 else None

        row = wait_for(counted, "the click in the campaign report")
        assert (row["clicks"], row["impressions"]) == (1, 1)  # once per message, click and open
        route = http.get(f"{public}/v1/campaigns/{cid}/report", headers=auth(keys["read"])).json()
        assert variant_row(route, "en")["clicks"] == 1
        events = Campaigns(store).events(cid)
        assert set(events["user_id"]) == {"U1"} and set(events["type"]) == {"click", "impression"}

        # the unsubscribe page speaks the message's language; a GET unsubscribes nobody
        page_zh = http.get(zh["unsubscribe"])
        assert page_zh.status_code == 200 and 'lang="zh-CN"' in page_zh.text
        assert visible(page_zh.text) == ["退订", "确定不再接收我们的邮件消息吗？", "确认退订"]
        page_en = http.get(en["unsubscribe"])
        assert page_en.status_code == 200 and 'lang="en"' in page_en.text
        assert visible(page_en.text) == ["Unsubscribe", "Stop receiving e-mail messages from us?",
                                         "Unsubscribe"]
        assert "<script" not in page_en.text + page_zh.text
        assert Ledger(store).suppressed("email") == {}
        # one-click, as a mail client posts it: no cookie, no CSRF token
        done = httpx.post(en["unsubscribe"], content=b"List-Unsubscribe=One-Click",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert done.status_code == 200 and "You are unsubscribed" in done.text
        assert httpx.post(en["unsubscribe"], content=b"List-Unsubscribe=One-Click").status_code == 200
        bad = httpx.post(f"{public}/u/{link.rsplit('/', 1)[1]}", content=b"List-Unsubscribe=One-Click")
        assert bad.status_code == 404  # a click token does not unsubscribe
        assert Ledger(store).suppressed("email") == {"U1": "unsubscribed"}

        # a following send skips the unsubscribed customer, not the other one
        outbox = tmp_path / "outbox"
        again = [Message(campaign=cid, variant="en", user_id=u, step="2", channel="email",
                         to=f"{u.lower()}@example.test", subject="Again", text="More: " + SHOP,
                         approved=True, timezone=noon_zone()) for u in ("U1", "U2")]
        res = send(again, get_channel("file", outbox=outbox, sender=sender), Ledger(store))
        by_user = {m.user_id: res.outcomes[m.message_id] for m in again}
        assert by_user["U1"] == "skipped:unsubscribed"

        # an SMS: a short tracked link (its campaign, variant and user come from the ledger)
        sms = Message(campaign=cid, variant="zh", user_id="U2", step="3", channel="sms",
                      to="+8613800000000", text=COPIES["zh"]["body"], lang="zh", approved=True,
                      timezone=noon_zone())
        assert send([sms], get_channel("file", outbox=outbox, sender=sender),
                    Ledger(store)).sent == 1
        text = json.loads((outbox / f"{sms.message_id}.json").read_text(encoding="utf-8"))["text"]
        short = re.search(re.escape(public) + r"/t/c/[\w-]+\.[\w-]+", text, re.ASCII).group()
        assert len(short) < len(link) - 40 and text.endswith("回复TD退订") and SHOP not in text
        r = http.get(short)
        assert r.status_code == 302 and r.headers["location"] == SHOP
        wait_for(lambda: variant_row(Campaigns(store).report(cid), "zh"), "the SMS click")
        assert variant_row(Campaigns(store).report(cid), "zh")["clicks"] == 1

        # the public routes are rate-limited per client
        with httpx.Client(base_url=public, timeout=30,
                          transport=httpx.HTTPTransport(local_address="127.0.0.9")) as flood:
            answers = [flood.get(f"/t/o/{uuid.uuid4().hex}").status_code for _ in range(70)]
        assert set(answers[:50]) == {404} and answers[-1] == 429, answers
    store.dispose()


def test_tokens_carry_the_message_and_refuse_changes():
    m = Message(campaign="c1", variant="zh", user_id="用户7", channel="sms", to="+8613800000000",
                text="春季上新 https://s.example/p?id=1，欢迎选购", lang="zh-CN")
    tracker = Tracker("https://t.example/", SECRET)
    full = tracker.url(m, "click", "https://s.example/p?id=1").rsplit("/", 1)[1]
    assert verify(full, SECRET, "click") == LinkClaims(
        "click", m.message_id, "c1", "zh", "用户7", "sms", "zh", "https://s.example/p?id=1")
    sms = tracker.sms_text(m)
    url = re.search(r"https://t\.example/t/c/\S+?(?=，)", sms).group()
    assert sms.endswith("回复TD退订") and "，欢迎选购" in sms
    short = verify(url.rsplit("/", 1)[1], SECRET, "click")
    assert (short.short, short.message_id, short.url, short.lang) == (
        True, m.message_id, "https://s.example/p?id=1", "zh")
    assert len(url) < 100 < len(full)  # an SMS pays by the character
    for token in (full, url.rsplit("/", 1)[1]):
        assert verify(token, SECRET, "unsubscribe") is None  # kinds do not mix
        assert verify(token, "other-secret") is None
        assert verify(token[:-1], SECRET) is None and verify(token + "A", SECRET) is None
    assert short.event_id == verify(full, SECRET).event_id  # one click event per message
