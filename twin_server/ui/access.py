"""Who is looking at the dashboards, checked by the server's own Authenticator.

The UI never widens access: every page and data request goes through the same token/JWT check and
roles as the AAS API. A browser cannot put ``Authorization`` on page loads or EventSource, so the
sign-in page stores the token in an HttpOnly, SameSite=Strict cookie scoped to /ui, and each request
presents it as a bearer credential. Writes (questionnaire answers) also need the writer role and a
same-origin ``Origin`` header, so another site cannot post with the cookie.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request

from twin_server.auth import AuthError, Principal, Role
from twin_server.routes.common import parts

COOKIE = "twinedge_ui_token"


def credential(request: Request) -> str | None:
    """``Authorization`` if the client sent one, else the sign-in cookie as a bearer credential."""
    header = request.headers.get("authorization")
    if header:
        return header
    token = request.cookies.get(COOKIE)
    return f"Bearer {token}" if token else None


def check(request: Request, role: Role) -> Principal:
    """The principal, or AuthError (401: sign in; 403: role too low)."""
    return parts(request).auth.check(credential(request), role)


def enabled(request: Request) -> bool:
    return parts(request).auth.enabled


def same_origin(request: Request) -> bool:
    """A write must come from a page of this server (CSRF): Origin (or Referer) names our host."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return False
    host = request.headers.get("host", "")
    return urlsplit(source).netloc == host


def check_write(request: Request) -> Principal:
    principal = check(request, Role.WRITER)
    if not same_origin(request):
        raise AuthError(403, "a write must come from a page of this server (Origin header missing or foreign)")
    return principal
