"""Dashboard sessions: a signed, HttpOnly, SameSite=Lax cookie holding a random session id.
The session itself (who logged in, their scope, the CSRF token every form posts back) is a row
of ``dashboard_sessions`` in the store, so logout ends it at once, in every process. A password
session also records a keyed hash of the administrator credential it was granted with: when
ADPILOT_ADMIN_USER or ADPILOT_ADMIN_PASSWORD changes, every such session stops working. A key
session ends when its key is revoked."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Column, DateTime, String, Table, delete, select, update
from starlette.requests import Request
from starlette.responses import Response

from adpilot.api.keys import scope_allows
from adpilot.api.security import AppState
from adpilot.errors import CsrfError, LoginRequired, ScopeError
from adpilot.store.sql import metadata

SESSIONS = Table(
    "dashboard_sessions", metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the id in the cookie
    Column("user_name", String(256), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("key_id", String(32), nullable=True),
    Column("credential", String(64), nullable=True),  # keyed hash of the admin user + password
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("revoked_at", DateTime, nullable=True),
)

COOKIE = "adpilot_session"
LOGIN_CSRF = "adpilot_login_csrf"


@dataclass(frozen=True)
class Session:
    user: str
    scope: str
    csrf: str
    key_id: str | None = None

    def can(self, scope: str) -> bool:
        return scope_allows(self.scope, scope)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    """Signed cookies naming server-side sessions (see the module docstring)."""

    def __init__(self, state: AppState) -> None:
        settings = state.settings
        secret = (settings.session_secret.get_secret_value() if settings.session_secret
                  else secrets.token_urlsafe(32))  # unset: sessions end when the process does
        self.state = state
        self.max_age = int(settings.session_hours * 3600)
        self.secure = settings.cookie_secure
        self._signer = URLSafeTimedSerializer(secret, salt="adpilot-dashboard")
        self._credential = None  # what password sessions are bound to
        if settings.admin_user and settings.admin_password:
            material = f"{settings.admin_user}\0{settings.admin_password.get_secret_value()}"
            self._credential = hmac.new(f"adpilot-credential:{secret}".encode(),
                                        material.encode(), hashlib.sha256).hexdigest()
        SESSIONS.create(state.store.engine, checkfirst=True)

    def password_ok(self, user: str, password: str) -> bool:
        s = self.state.settings
        if not s.admin_user or not s.admin_password:
            return False
        # compare both, always, in constant time
        ok_user = hmac.compare_digest(user.encode(), s.admin_user.encode())
        ok_pass = hmac.compare_digest(password.encode(), s.admin_password.get_secret_value().encode())
        return ok_user and ok_pass

    def login(self, response: Response, user: str, scope: str, key_id: str | None = None) -> None:
        """Start a session (a password session when ``key_id`` is None) and set its cookie."""
        session_id, now = secrets.token_urlsafe(32), _now()
        with self.state.store.engine.begin() as conn:
            conn.execute(delete(SESSIONS).where(SESSIONS.c.expires_at < now))  # tidy up
            conn.execute(SESSIONS.insert().values(
                id=_digest(session_id), user_name=user[:256], scope=scope,
                csrf=secrets.token_urlsafe(24), key_id=key_id,
                credential=None if key_id else self._credential, created_at=now,
                expires_at=now + timedelta(seconds=self.max_age)))
        response.set_cookie(COOKIE, self._signer.dumps({"sid": session_id}), max_age=self.max_age,
                            httponly=True, samesite="lax", secure=self.secure, path="/")

    def logout(self, request: Request, response: Response) -> None:
        """End the request's session on the server and drop its cookie."""
        session_id = self._session_id(request)
        if session_id:
            with self.state.store.engine.begin() as conn:
                conn.execute(update(SESSIONS).where(SESSIONS.c.id == _digest(session_id))
                             .values(revoked_at=_now()))
        response.delete_cookie(COOKIE, path="/")

    def _session_id(self, request: Request) -> str | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        try:
            data = self._signer.loads(token, max_age=self.max_age)
        except BadSignature:
            return None
        return data.get("sid") if isinstance(data, dict) else None

    def current(self, request: Request) -> Session | None:
        session_id = self._session_id(request)
        if not isinstance(session_id, str):
            return None
        with self.state.store.engine.connect() as conn:
            row = conn.execute(select(SESSIONS).where(SESSIONS.c.id == _digest(session_id))).first()
        if row is None or row.revoked_at is not None or row.expires_at <= _now():
            return None
        if row.key_id:
            if not self.state.keys.is_active(row.key_id):
                return None  # the key was revoked: the session ends with it
        elif (self._credential is None or row.credential is None
              or not hmac.compare_digest(row.credential, self._credential)):
            return None  # the administrator's user name or password changed since
        return Session(row.user_name, row.scope, row.csrf, row.key_id)

    def require(self, request: Request, scope: str = "read") -> Session:
        session = self.current(request)
        if session is None:
            raise LoginRequired
        if not session.can(scope):
            raise ScopeError
        return session

    @staticmethod
    def check_csrf(session: Session, token: str | None) -> None:
        if not token or not hmac.compare_digest(token, session.csrf):
            raise CsrfError
