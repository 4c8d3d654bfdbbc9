"""The /ui routes: pages, sign-in, the data endpoints the pages' scripts call, and static files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from aas_models.ids import IdError, b64url_decode
from aas_models.timeseries.base import MAX_POINTS
from twin_server.auth import AuthError, Role
from twin_server.errors import ApiError
from twin_server.routes import events, timeseries
from twin_server.routes.common import parts
from twin_server.ui import access, adoption, catalogue
from twin_server.ui.context import ctx
from twin_server.ui.i18n import COOKIE as LANG_COOKIE
from twin_server.ui.i18n import LANGS, choose, t
from twin_server.ui.pages import adoption as adoption_page
from twin_server.ui.pages import alarms as alarms_page
from twin_server.ui.pages import asset as asset_page
from twin_server.ui.pages import catalogue as catalogue_page
from twin_server.ui.pages import fleet as fleet_page
from twin_server.ui.render import esc, page

STATIC = Path(__file__).with_name("static")
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
#: Nothing on a page may load from anywhere but this server.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

router = APIRouter(prefix="/ui", include_in_schema=False)


def _html(request: Request, text: str, status: int = 200) -> Response:
    response = HTMLResponse(text, status_code=status, headers={"Content-Security-Policy": CSP,
                                                               "X-Content-Type-Options": "nosniff",
                                                               "Cache-Control": "no-store"})
    lang = request.query_params.get("lang")
    if lang in LANGS:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path="/ui", samesite="strict")
    return response


def _problem(request: Request, key: str, text: str, status: int) -> Response:
    lang = choose(request)
    body = f'<p class="error">{esc(t(key, lang, text=text))}</p><p><a href="/ui">{esc(t("back", lang))}</a></p>'
    return _html(request, page(t("app", lang), body, lang, "", request.url.path.removeprefix("/ui")), status)


async def _guard(request: Request, role: Role, render: Callable[[], Awaitable[str]]) -> Response:
    try:
        access.check(request, role)
    except AuthError as exc:
        if exc.status == 401:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/ui/login?next={_quote(target)}", status_code=303)
        return _problem(request, "forbidden", exc.text, 403)
    try:
        return _html(request, await render())
    except ApiError as exc:
        if exc.status == 404:
            return _problem(request, "notfound", str(exc), 404)
        raise


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


@router.get("")
@router.get("/")
async def fleet(request: Request) -> Response:
    return await _guard(request, Role.READER, lambda: fleet_page.render(ctx(request)))


@router.get("/asset")
async def asset(request: Request, id: Annotated[str, Query(min_length=1)]) -> Response:
    try:
        shell_id = b64url_decode(id)
    except IdError as exc:
        return _problem(request, "notfound", str(exc), 400)
    return await _guard(request, Role.READER, lambda: asset_page.render(ctx(request), shell_id))


@router.get("/alarms")
async def alarms(request: Request) -> Response:
    return await _guard(request, Role.READER, lambda: alarms_page.render(ctx(request)))


@router.get("/catalogue")
async def catalogue_view(request: Request, type: str | None = None, old: str | None = None,
                         new: str | None = None) -> Response:
    async def render() -> str:
        return catalogue_page.render(ctx(request), type, old, new)

    return await _guard(request, Role.READER, render)


@router.get("/catalogue/aasx")
async def catalogue_aasx(request: Request, type: str, version: str) -> Response:
    try:
        access.check(request, Role.READER)
    except AuthError as exc:
        return Response(exc.text, status_code=exc.status, media_type="text/plain")
    found = catalogue.find(ctx(request).settings.reference_models, type, version)
    if found is None:
        return _problem(request, "notfound", f"{type} {version}", 404)
    try:
        data = catalogue.aasx(found)
    except (ValueError, OSError) as exc:
        return _problem(request, "notfound", str(exc), 422)
    name = f"{type}-{version}.aasx"
    return Response(data, media_type="application/asset-administration-shell-package",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/adoption")
async def adoption_view(request: Request, scope: str = "factory", id: str = adoption.FACTORY,
                        saved: int = 0) -> Response:
    return await _guard(request, Role.READER,
                        lambda: adoption_page.render(ctx(request), scope, id, saved=bool(saved)))


@router.get("/adoption/report")
async def adoption_report(request: Request, scope: str = "factory", id: str = adoption.FACTORY) -> Response:
    return await _guard(request, Role.READER, lambda: adoption_page.render(ctx(request), scope, id, report=True))


@router.post("/adoption/answers")
async def adoption_answers(request: Request) -> Response:
    """Questionnaire answers are writes: writer role and a same-origin form post."""
    try:
        access.check_write(request)
    except AuthError as exc:
        return _problem(request, "forbidden", exc.text, exc.status)
    c = ctx(request)
    model = adoption.model_of(c)
    form = await request.form()
    allowed = {i.id: {o.value for o in i.evidence.question.options} for i in model.indicators
               if i.evidence.question is not None}
    given: dict[str, float] = {}
    for key, raw in form.multi_items():
        if not isinstance(raw, str) or raw == "":
            continue
        try:
            value = float(raw)
        except ValueError:
            return _problem(request, "notfound", f"{key}: {raw!r} is not a number", 400)
        if key == adoption.EQUIPMENT_COUNT and 0 <= value <= 1_000_000:
            given[key] = float(int(value))
        elif key in allowed and value in allowed[key]:
            given[key] = value
        else:
            return _problem(request, "notfound", f"{key}: {raw!r} is not one of its answers", 400)
    await adoption.record(c, given)
    return RedirectResponse("/ui/adoption?saved=1", status_code=303)


@router.get("/login")
async def login_form(request: Request, next: str = "/ui", bad: int = 0) -> Response:
    lang = choose(request)
    target = next if next.startswith("/ui") else "/ui"
    body = (f'<p>{esc(t("login.body", lang))}</p>'
            + (f'<p class="error">{esc(t("login.bad", lang))}</p>' if bad else "")
            + f'<form method="post" action="/ui/login" class="form"><input type="hidden" name="next" '
              f'value="{esc(target)}"><label>{esc(t("login.token", lang))} <input type="password" name="token" '
              f'autocomplete="current-password" required></label><button>{esc(t("login.submit", lang))}</button>'
              "</form>")
    return _html(request, page(t("login.title", lang), body, lang, "", "/login"))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    token = str(form.get("token") or "").strip()
    target = str(form.get("next") or "/ui")
    target = target if target.startswith("/ui") else "/ui"
    if not access.same_origin(request):
        return _problem(request, "forbidden", "sign in from this server's own page", 403)
    try:
        parts(request).auth.check(f"Bearer {token}", Role.READER)
    except AuthError:
        return RedirectResponse(f"/ui/login?bad=1&next={_quote(target)}", status_code=303)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(access.COOKIE, token, httponly=True, samesite="strict", path="/ui",
                        secure=request.url.scheme == "https")
    return response


@router.get("/logout")
async def logout(request: Request) -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(access.COOKIE, path="/ui")
    return response


# --- data the pages' scripts read, with the same roles as the API -------------------------------------


def _data_check(request: Request) -> Response | None:
    try:
        access.check(request, Role.READER)
    except AuthError as exc:
        return Response(exc.text, status_code=exc.status, media_type="text/plain")
    return None


@router.get("/data/events")
async def data_events(request: Request) -> Response:
    refused = _data_check(request)
    if refused is not None:
        return refused
    return await events.get_events(request, access.check(request, Role.READER))


@router.get("/data/timeseries")
async def data_timeseries(
    request: Request,
    submodel_id: Annotated[str, Query(alias="submodelId", min_length=1)],
    id_short_path: Annotated[str, Query(alias="idShortPath", min_length=1, max_length=2000)],
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_POINTS)] = 2000,
    interval: Annotated[float | None, Query(gt=0, le=366 * 86400)] = None,
) -> Response:
    refused = _data_check(request)
    if refused is not None:
        return refused
    return await timeseries.get_timeseries(request, access.check(request, Role.READER), submodel_id,
                                           id_short_path, start, end, limit, interval)


@router.get("/static/{name}")
async def static(name: str) -> Response:
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in _TYPES or not path.is_file():
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(path.read_bytes(), media_type=_TYPES[path.suffix], headers={"Cache-Control": "max-age=300"})
