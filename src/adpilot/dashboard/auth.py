"""Dashboard sessions: a signed, HttpOnly, SameSite=Lax cookie holding who logged in, their
scope and a CSRF token that every form posts back."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from adpilot.api.keys import scope_allows
from adpilot.api.security import AppState

COOKIE = "adpilot_session"
LOGIN_CSRF = "adpilot_login_csrf"


class LoginRequired(Exception):
    """No valid session: the handler sends the browser to the login page."""


class CsrfError(Exception):
    """A form came back without the session's CSRF token."""


class ScopeError(Exception):
    """The session's scope does not allow the action."""


@dataclass(frozen=True)
class Session:
    user: str
    scope: str
    csrf: str
    key_id: str | None = None

    def can(self, scope: str) -> bool:
        return scope_allows(self.scope, scope)


class Sessions:
    def __init__(self, state: AppState) -> None:
        settings = state.settings
        secret = (settings.session_secret.get_secret_value() if settings.session_secret
                  else secrets.token_urlsafe(32))  # unset: sessions end when the process does
        self.state = state
        self.max_age = int(settings.session_hours * 3600)
        self.secure = settings.cookie_secure
        self._signer = URLSafeTimedSerializer(secret, salt="adpilot-dashboard")

    def password_ok(self, user: str, password: str) -> bool:
        s = self.state.settings
        if not s.admin_user or not s.admin_password:
            return False
        # compare both, always, in constant time
        ok_user = hmac.compare_digest(user.encode(), s.admin_user.encode())
        ok_pass = hmac.compare_digest(password.encode(), s.admin_password.get_secret_value().encode())
        return ok_user and ok_pass

    def login(self, response: Response, user: str, scope: str, key_id: str | None = None) -> None:
        token = self._signer.dumps({"u": user, "s": scope, "c": secrets.token_urlsafe(24),
                                    "k": key_id})
        response.set_cookie(COOKIE, token, max_age=self.max_age, httponly=True, samesite="lax",
                            secure=self.secure, path="/")

    @staticmethod
    def logout(response: Response) -> None:
        response.delete_cookie(COOKIE, path="/")

    def current(self, request: Request) -> Session | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        try:
            data = self._signer.loads(token, max_age=self.max_age)
        except BadSignature:
            return None
        if data.get("k") and not self.state.keys.is_active(data["k"]):
            return None  # the key was revoked: the session ends with it
        return Session(data["u"], data["s"], data["c"], data.get("k"))

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
