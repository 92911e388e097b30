"""Optional DKIM signing of rendered e-mails (RFC 6376, through ``dkimpy``).

A signer is built by the caller from its settings (``ADPILOT_DKIM_DOMAIN``, ``ADPILOT_DKIM_SELECTOR``,
``ADPILOT_DKIM_KEY_FILE``: a PEM RSA private key) and given to the :class:`~adpilot.delivery.mime.Sender`;
:func:`~adpilot.delivery.mime.render_email` then prepends the ``DKIM-Signature`` header. The key
never appears in a repr or a log line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from adpilot.errors import ConfigError, MissingDependencyError

# what is signed: the headers a receiver shows or acts on, the unsubscribe ones included (Gmail
# checks that List-Unsubscribe-Post is covered by the signature for one-click unsubscribe)
SIGNED_HEADERS = (b"From", b"To", b"Subject", b"Date", b"Message-ID", b"MIME-Version",
                  b"Content-Type", b"List-Unsubscribe", b"List-Unsubscribe-Post")


@dataclass(frozen=True)
class DkimSigner:
    """Signs e-mails as ``selector._domainkey.domain`` with ``private_key`` (PEM bytes)."""

    domain: str
    selector: str
    private_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not self.domain or not self.selector:
            raise ConfigError("DKIM signing needs a domain and a selector "
                              "(ADPILOT_DKIM_DOMAIN, ADPILOT_DKIM_SELECTOR)")
        if b"PRIVATE KEY" not in self.private_key:
            raise ConfigError("the DKIM key is not a PEM private key (ADPILOT_DKIM_KEY_FILE)")

    @classmethod
    def from_file(cls, domain: str, selector: str, key_file: str | Path) -> DkimSigner:
        """A signer whose key is read from ``key_file``; a clear error when it cannot be read."""
        try:
            key = Path(key_file).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read the DKIM key file {key_file}: {exc.strerror}") from None
        return cls(domain=domain, selector=selector, private_key=key)

    def sign(self, data: bytes) -> bytes:
        """``data`` (an RFC 5322 e-mail) with its ``DKIM-Signature`` header in front."""
        try:
            import dkim
        except ImportError:
            raise MissingDependencyError("DKIM signing needs dkimpy: "
                                         "pip install 'adpilot[delivery]'") from None
        header = dkim.sign(data, self.selector.encode("ascii"), self.domain.encode("ascii"),
                           self.private_key, include_headers=list(SIGNED_HEADERS))
        return header + data
