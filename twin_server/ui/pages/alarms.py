"""Alarms page: every active alarm of the fleet, most severe first."""

from __future__ import annotations

from aas_models.ids import b64url_encode
from twin_server.ui.context import Ctx
from twin_server.ui.fleetdata import rows
from twin_server.ui.i18n import t
from twin_server.ui.render import empty, esc, link, page, table


async def render(c: Ctx) -> str:
    lang = c.lang
    items = await rows(c)
    active = sorted(((r, a) for r in items for a in r.alarms), key=lambda ra: ra[1].severity != "critical")
    if not items:
        body = empty(t("empty.fleet.body", lang))
    elif not active:
        body = empty(t("empty.alarms", lang))
    else:
        body = table(
            [t("col.severity", lang), t("col.asset", lang), t("col.alarm", lang), t("col.time", lang)],
            [[f'<span class="sev sev-{esc(a.severity.value)}">{esc(t("severity." + a.severity.value, lang))}</span>',
              f'<a href="{esc(link("/asset", id=b64url_encode(r.asset.shell_id)))}">{esc(r.asset.name)}</a>',
              esc(t("alarm." + a.code, lang, **a.args)),
              esc(a.since.strftime("%Y-%m-%d %H:%M:%S") if a.since else "–")] for r, a in active],
            cls="alarms")
    return page(t("alarms.title", lang), body, lang, "alarms", "/alarms", scripts=["app.js"])
