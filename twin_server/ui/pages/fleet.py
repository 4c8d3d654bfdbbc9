"""Fleet overview: every asset's state, health, active alarms, OEE and last data time, by line."""

from __future__ import annotations

from aas_models.ids import b64url_encode
from twin_server.ui.context import Ctx
from twin_server.ui.fleetdata import AssetRow, lines, rolled, rows
from twin_server.ui.i18n import Lang, t
from twin_server.ui.production import WINDOW
from twin_server.ui.render import empty, esc, link, num, page, pct, table


def _row(r: AssetRow, lang: Lang) -> list[str]:
    a = r.asset
    health = a.condition.get("HealthIndex")
    last = a.last_data
    crit = sum(1 for x in r.alarms if x.severity == "critical")
    oee = r.production.oee.oee if r.production.oee else None
    return [
        f'<a href="{esc(link("/asset", id=b64url_encode(a.shell_id)))}">{esc(a.name)}</a>',
        f'<span class="state state-{esc(r.state)}">{esc(t("state." + r.state, lang))}</span>',
        f'<span class="health">{num(health if isinstance(health, int | float) else None)}</span>',
        f'<span class="badge{" crit" if crit else ""}">{len(r.alarms)}</span>' if r.alarms else "0",
        pct(oee),
        f'<time class="last" datetime="{esc(last.isoformat() if last else "")}">'
        f'{esc(last.strftime("%Y-%m-%d %H:%M:%S") if last else "–")}</time>',
    ]


async def render(c: Ctx) -> str:
    lang = c.lang
    items = await rows(c)
    if not items:
        body = empty(t("empty.fleet.title", lang) + ". " + t("empty.fleet.body", lang))
        return page(t("fleet.title", lang), body, lang, "fleet", "")
    parts = []
    factory = rolled(items)
    hours = int(WINDOW.total_seconds() // 3600)
    parts.append(f'<div class="kpis"><div class="kpi"><span>{esc(t("fleet.factory_oee", lang))}</span>'
                 f'<b id="factory-oee">{pct(factory.oee)}</b><small>{esc(t("fleet.window", lang, hours=hours))}'
                 "</small></div></div>")
    if all(r.asset.last_data is None for r in items):
        parts.append(empty(t("empty.agent", lang)))
    headers = [t(k, lang) for k in ("col.asset", "col.state", "col.health", "col.alarms", "col.oee", "col.last")]
    for line, members in lines(items).items():
        line_oee = rolled(members)
        title = f'{esc(t("fleet.line", lang))} {esc(line)}' if line else esc(t("fleet.line", lang)) + " –"
        parts.append(f'<section class="line"><h2>{title} <small>{len(members)} {esc(t("fleet.assets", lang))} · '
                     f'OEE {pct(line_oee.oee)}</small></h2>')
        attrs = [f'data-od="{esc(r.asset.operational_id or "")}" data-cm="{esc(r.asset.condition_id or "")}"'
                 for r in members]
        parts.append(table(headers, [_row(r, lang) for r in members], cls="fleet", row_attrs=attrs))
        parts.append("</section>")
    return page(t("fleet.title", lang), "".join(parts), lang, "fleet", "", scripts=["app.js", "fleet.js"])
