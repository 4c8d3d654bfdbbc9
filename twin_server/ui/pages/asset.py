"""Asset page: nameplate, live values (SSE), trend with zoom, condition, SPC chart, KPIs, alarms."""

from __future__ import annotations

from typing import Any

from aas_models.builders import nameplate
from aas_models.ids import b64url_encode
from twin_server.ui.alarms import alarms, state
from twin_server.ui.context import Ctx
from twin_server.ui.i18n import Lang, t
from twin_server.ui.production import WINDOW, production
from twin_server.ui.render import empty, esc, page, pct, table
from twin_server.ui.snapshot import AssetSnapshot, one

#: Texts the page's script needs, in the page's language.
_JS_TEXTS = ("asset.connected", "asset.disconnected", "asset.spc.few", "empty.history", "asset.reset",
             "state.producing")


def _text(value: Any, lang: Lang) -> str:
    if isinstance(value, list):  # MultiLanguageProperty value: [{"en": ...}, {"ko": ...}]
        texts = {k: v for item in value if isinstance(item, dict) for k, v in item.items()}
        return str(texts.get(lang) or texts.get("en") or next(iter(texts.values()), ""))
    return "" if value is None or isinstance(value, dict) else str(value)


def _nameplate(docs: dict[str, dict[str, Any]], lang: Lang) -> str:
    from twin_server.values import submodel_value

    for doc in docs.values():
        keys = (doc.get("semanticId") or {}).get("keys") or [{}]
        if keys[0].get("value") == nameplate.SEMANTIC_ID:
            rows = [[esc(k), esc(_text(v, lang))] for k, v in submodel_value(doc).items() if _text(v, lang)]
            return table(["", ""], rows, cls="kv")
    return "<p>–</p>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "–" if value is None else str(value)


def _live(asset: AssetSnapshot, lang: Lang) -> str:
    if not asset.signals:
        return "<p>–</p>"
    rows, attrs = [], []
    for s in asset.signals.values():
        label = s.display.get(lang) or s.display.get("en") or s.name
        rows.append([esc(label), f'<b class="v">{esc(_fmt(s.value))}</b>', esc(s.unit or ""),
                     f'<span class="q q-{esc(s.quality or "none")}">{esc(s.quality or "–")}</span>',
                     f'<time class="ts">{esc(s.timestamp.strftime("%H:%M:%S") if s.timestamp else "–")}</time>'])
        attrs.append(f'data-signal="{esc(s.name)}"')
    note = "" if asset.last_data else empty(t("empty.agent", lang))
    headers = [t(k, lang) for k in ("col.signal", "col.value", "col.unit", "col.quality", "col.time")]
    return note + table(headers, rows, cls="live", row_attrs=attrs)


_CONDITION = (("HealthIndex", "asset.health"), ("AnomalyScore", "asset.anomaly"),
              ("AnomalyThreshold", "asset.threshold"), ("FaultClass", "asset.fault"),
              ("FaultProbability", "col.value"), ("RemainingUsefulLife", "asset.rul"),
              ("SpcState", "asset.spc.state"), ("ViolatedRules", "asset.spc.state"))


def _condition(asset: AssetSnapshot, lang: Lang) -> str:
    c = asset.condition
    if not any(c.get(k) not in (None, "") for k, _ in _CONDITION):
        return empty(t("empty.analytics", lang))
    health = c.get("HealthIndex")
    gauge = ""
    if isinstance(health, int | float):
        width = max(0.0, min(1.0, float(health))) * 100
        gauge = (f'<svg class="gauge" viewBox="0 0 100 8" preserveAspectRatio="none"><rect width="100" height="8" '
                 f'class="bg"/><rect id="health-bar" width="{width:.1f}" height="8" class="fg"/></svg>')
    labels = {"FaultProbability": "p", "ViolatedRules": "rules", "AnomalyThreshold": t("asset.threshold", lang)}
    rows = [[esc(labels.get(k) or t(key, lang)), f'<b data-cm-key="{k}">{esc(_fmt(c.get(k)))}</b>'] for k, key in
            _CONDITION]
    info = c.get("ModelInfo") if isinstance(c.get("ModelInfo"), dict) else {}
    assert isinstance(info, dict)
    metrics = info.get("Metrics") if isinstance(info.get("Metrics"), dict) else {}
    assert isinstance(metrics, dict)
    model = " ".join(str(info.get(k) or "") for k in ("ModelName", "ModelVersion")).strip()
    if model:
        rows.append([esc(t("asset.model", lang)), esc(model + (" · " + ", ".join(
            f"{k} {_fmt(v)}" for k, v in metrics.items()) if metrics else ""))])
    return gauge + table(["", ""], rows, cls="kv")


def _hours(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 3600:.1f} h"


async def render(c: Ctx, shell_id: str) -> str:
    lang = c.lang
    asset, docs = await one(c.repo, shell_id)
    active = alarms(asset, c.now)
    st = state(asset, active, c.now)
    prod = await production(c.store, asset.operational_id, c.now)
    o = prod.oee
    r = prod.reliability
    kpis = "".join(f'<div class="kpi"><span>{esc(t(k, lang))}</span><b>{v}</b></div>' for k, v in (
        ("asset.availability", pct(o.availability if o else None)),
        ("asset.performance", pct(o.performance if o else None)),
        ("asset.quality", pct(o.quality if o else None)), ("col.oee", pct(o.oee if o else None)),
        ("asset.mtbf", _hours(r.mtbf if r else None)), ("asset.mttr", _hours(r.mttr if r else None))))
    numeric = [s for s in asset.signals.values() if s.name not in ("PartQuality",) and
               (s.value is None or isinstance(s.value, int | float))]
    options = "".join(f'<option value="{esc(s.name)}">{esc(s.display.get(lang) or s.name)}</option>'
                      for s in numeric)
    alarm_rows = [[esc(t("severity." + a.severity.value, lang)), esc(t("alarm." + a.code, lang, **a.args)),
                   esc(a.since.strftime("%Y-%m-%d %H:%M:%S") if a.since else "–")] for a in active]
    body = (
        f'<p class="sub"><span class="state state-{esc(st)}" id="asset-state">{esc(t("state." + st, lang))}</span> '
        f'<span id="conn" class="conn"></span> {esc(asset.asset_id)}</p>'
        f'<div class="grid">'
        f'<section><h2>{esc(t("asset.live", lang))}</h2>{_live(asset, lang)}</section>'
        f'<section><h2>{esc(t("asset.condition", lang))}</h2>{_condition(asset, lang)}'
        f'<h2>{esc(t("asset.kpi", lang))} <small>{int(WINDOW.total_seconds() // 3600)} {esc(t("hours", lang))}'
        f'</small></h2><div class="kpis">{kpis}</div></section>'
        f'</div>'
        f'<section><h2>{esc(t("asset.trend", lang))}</h2>'
        f'<p class="tools"><select id="signal">{options}</select> <button id="reset" type="button">'
        f'{esc(t("asset.reset", lang))}</button> <small>{esc(t("asset.zoom", lang))}</small></p>'
        f'<div id="trend" class="chart"></div></section>'
        f'<section><h2>{esc(t("asset.spc", lang))}</h2><p><small>{esc(t("asset.spc.note", lang, n=5))}</small></p>'
        f'<div id="spc" class="chart"></div></section>'
        f'<div class="grid"><section><h2>{esc(t("asset.alarms", lang))}</h2>'
        + (table([t("col.severity", lang), t("col.alarm", lang), t("col.time", lang)], alarm_rows)
           if alarm_rows else empty(t("empty.alarms", lang)))
        + f'</section><section><h2>{esc(t("asset.nameplate", lang))}</h2>{_nameplate(docs, lang)}</section></div>'
    )
    data = {"od": asset.operational_id, "cm": asset.condition_id,
            "odB64": b64url_encode(asset.operational_id) if asset.operational_id else None,
            "cmB64": b64url_encode(asset.condition_id) if asset.condition_id else None,
            "texts": {k: t(k, lang) for k in _JS_TEXTS}}
    return page(asset.name, body, lang, "fleet", f"/asset?id={b64url_encode(shell_id)}",
                scripts=["app.js", "charts.js", "asset.js"], data=data)
