"""Who may use the viewer, and which requests it trusts.

- **Bind rule** (:func:`check_bind`): a loopback address needs nothing; any other address needs ``LEANLLM_UI_TOKEN``
  and the viewer refuses to start without one.
- **Token**: when set, every request needs it, as ``Authorization: Bearer <token>`` (scripts, the export) or as the
  session cookie the ``/login`` form sets (browsers). The cookie holds an HMAC of the token, never the token, and is
  ``HttpOnly; SameSite=Strict``.
- **Host check**: without a token the viewer answers only requests addressed to a loopback name, so a web page
  cannot reach it through DNS rebinding.
- **CSRF**: the one form that writes (a score) carries a token bound to the event and to this process's secret (and
  the session, when there is one); a request whose ``Origin`` or ``Sec-Fetch-Site`` says it came from another site
  is refused whatever it carries.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os

from starlette.requests import Request

__all__ = ["COOKIE_NAME", "TOKEN_ENV", "Guard", "check_bind", "is_loopback"]

TOKEN_ENV = "LEANLLM_UI_TOKEN"
COOKIE_NAME = "leanllm_ui_session"
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Raise ValueError when ``host`` is not loopback and there is no token."""
    if token is None and not is_loopback(host):
        raise ValueError(f"refusing to serve the viewer on {host} without a token: set {TOKEN_ENV} (or bind 127.0.0.1)")


def _host_name(header: str) -> str:
    """The host of a ``Host`` header, without the port (``[::1]:4320`` -> ``::1``)."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """The checks above for one running viewer (``token`` None: loopback only, no login)."""

    def __init__(self, token: str | None) -> None:
        self._token = token
        self._secret = os.urandom(32)

    @property
    def required(self) -> bool:
        return self._token is not None

    def _mac(self, key: bytes, message: str) -> str:
        return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()

    def session_value(self) -> str:
        assert self._token is not None
        return self._mac(self._token.encode("utf-8"), "leanllm-ui-session")

    def token_matches(self, candidate: str) -> bool:
        return self._token is not None and hmac.compare_digest(candidate.encode("utf-8"), self._token.encode("utf-8"))

    def authorized(self, request: Request) -> bool:
        if self._token is None:
            return True
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "bearer" and self.token_matches(credential.strip()):
            return True
        cookie = request.cookies.get(COOKIE_NAME, "")
        return bool(cookie) and hmac.compare_digest(cookie, self.session_value())

    def host_allowed(self, request: Request) -> bool:
        """Without a token, only loopback names (DNS rebinding); with one, the token decides."""
        if self._token is not None:
            return True
        return is_loopback(_host_name(request.headers.get("host", "")))

    def csrf_token(self, request: Request, purpose: str) -> str:
        session = request.cookies.get(COOKIE_NAME, "") if self._token is not None else ""
        return self._mac(self._secret, f"{purpose}\n{session}")

    def same_origin(self, request: Request) -> bool:
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return False
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            return origin is None
        return origin == f"{request.url.scheme}://{request.headers.get('host', '')}"

    def csrf_ok(self, request: Request, purpose: str, submitted: str) -> bool:
        expected = self.csrf_token(request, purpose)
        return self.same_origin(request) and hmac.compare_digest(submitted.encode(), expected.encode())
