"""DKIM signing (RFC 6376): e-mails received by a real SMTP server verify against the public key."""

from __future__ import annotations

import base64
import shutil
import subprocess

import pytest

from adpilot.config import Settings
from adpilot.delivery.base import Message
from adpilot.delivery.from_settings import channel_from, dkim_from
from adpilot.errors import ConfigError
from tests.delivery_servers import SMTPServer

dkim = pytest.importorskip("dkim")
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl tool")


@pytest.fixture(scope="module")
def keypair(tmp_path_factory):
    """A fresh 2048-bit RSA key and its DNS TXT record (the form a receiver looks up)."""
    folder = tmp_path_factory.mktemp("dkim")
    key = folder / "private.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def _settings(tmp_path, smtp_url: str, key, **extra) -> Settings:
    return Settings(home=tmp_path, smtp_url=smtp_url, smtp_from="Lumen & Loom <news@shop.example>",
                    postal_address="1 Market St, Springfield", public_url="http://127.0.0.1:8000",
                    link_secret="s" * 32, dkim_domain="shop.example", dkim_selector="mail2026",
                    dkim_key_file=key, **extra)


def test_sent_email_carries_a_signature_that_verifies(tmp_path, keypair):
    key, txt = keypair
    looked_up = []

    def dns(name, timeout=5):
        looked_up.append(name)
        return txt if name == b"mail2026._domainkey.shop.example." else None

    with SMTPServer() as server:
        channel = channel_from("smtp", _settings(tmp_path, server.url, key))
        for lang, text in (("en", "New linen shirts: https://shop.example/p/1"),
                           ("zh", "新款亚麻衬衫上架：https://shop.example/p/1")):
            receipt = channel.deliver(Message(campaign="c1", user_id=f"u-{lang}", channel="email",
                                              to=f"{lang}@example.com", subject="Linen · 亚麻",
                                              text=text, lang=lang, approved=True))
            assert receipt.status == "sent", receipt
        getattr(channel, "close", lambda: None)()
        received = [m.content for m in server.handler.received]
    assert len(received) == 2
    for data in received:
        assert data.startswith(b"DKIM-Signature:")
        assert b"list-unsubscribe-post" in data.split(b"\r\n\r\n")[0].lower()
        assert dkim.verify(data, dnsfunc=dns)
        tampered = data.replace(b"Subject: ", b"Subject: Re: ", 1)
        assert not dkim.verify(tampered, dnsfunc=dns)  # the subject is covered by the signature
    assert looked_up


def test_partial_dkim_settings_name_what_is_missing(tmp_path, keypair):
    key, _ = keypair
    settings = Settings(home=tmp_path, dkim_domain="shop.example")
    with pytest.raises(ConfigError, match="ADPILOT_DKIM_SELECTOR, ADPILOT_DKIM_KEY_FILE"):
        dkim_from(settings)
    assert dkim_from(Settings(home=tmp_path)) is None  # unset: e-mails go unsigned
    with pytest.raises(ConfigError, match="cannot read the DKIM key file"):
        dkim_from(Settings(home=tmp_path, dkim_domain="d.example", dkim_selector="s",
                           dkim_key_file=tmp_path / "missing.pem"))
    signer = dkim_from(_settings(tmp_path, "smtp://127.0.0.1:1", key))
    assert "PRIVATE" not in repr(signer)  # the key never shows in a repr or a log line
