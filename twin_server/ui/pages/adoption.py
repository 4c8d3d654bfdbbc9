"""AI-adoption page and its printable report: level, area scores (radar), what is missing for the
next level, indicators with their evidence, the questionnaire and the recorded history."""

from __future__ import annotations

from aas_models.adoption import Assessment, AssessmentModel, AssessmentModelError
from aas_models.adoption import submodel as sm
from twin_server.ui import adoption
from twin_server.ui.context import Ctx
from twin_server.ui.fleetdata import rows
from twin_server.ui.i18n import Lang, t
from twin_server.ui.radar import radar
from twin_server.ui.render import empty, esc, link, num, page, table


def _level_name(model: AssessmentModel, result: Assessment, lang: Lang) -> str:
    level = model.level(result.level)
    return level.name[lang] if level else t("adoption.none", lang)


def _missing(model: AssessmentModel, result: Assessment, lang: Lang) -> str:
    nxt = model.level(result.level + 1)
    if nxt is None:
        return f'<p class="ok">{esc(t("adoption.top", lang))}</p>'
    by_id = {i.id: i for i in model.indicators}
    items = [f'<li data-indicator="{esc(i)}"><b>{esc(by_id[i].name[lang])}</b> – {esc(by_id[i].hint[lang])} '
             f'<small>({esc(num(100 * result.indicators[i].score, 0))} / 100)</small></li>' for i in result.missing]
    if result.points_missing > 0:
        items.append(f"<li>{esc(t('adoption.points', lang, points=f'{result.points_missing:.1f}'))}</li>")
    return (f'<h2>{esc(t("adoption.missing", lang, level=nxt.level, name=nxt.name[lang]))}</h2>'
            f'<ul id="missing" class="missing">{"".join(items)}</ul>')


def _indicators(model: AssessmentModel, result: Assessment, lang: Lang) -> str:
    areas = {a.id: a.name[lang] for a in model.areas}
    body = []
    for ind in model.indicators:
        r = result.indicators[ind.id]
        body.append([esc(areas[ind.area]), esc(ind.name[lang]), esc(str(ind.required_from)),
                     esc(num(100 * r.score, 0)), esc(t("source." + r.source.value, lang)),
                     "✔" if r.met else "✘"])
    return table([t("col.area", lang), t("col.indicator", lang), t("col.level", lang), t("col.score", lang),
                  t("col.source", lang), ""], body, cls="indicators")


def _questionnaire(model: AssessmentModel, given: dict[str, float], lang: Lang) -> str:
    fields = []
    count = given.get(adoption.EQUIPMENT_COUNT)
    fields.append(f'<label>{esc(t("adoption.equipment", lang))}'
                  f' <input type="number" min="0" name="{adoption.EQUIPMENT_COUNT}" '
                  f'value="{esc(int(count) if count else "")}"></label>')
    for ind in model.indicators:
        q = ind.evidence.question
        if q is None:
            continue
        opts = [f'<option value="">{esc(t("adoption.unanswered", lang))}</option>']
        opts += [f'<option value="{o.value}"{" selected" if given.get(ind.id) == o.value else ""}>'
                 f'{esc(o.label[lang])}</option>' for o in q.options]
        fields.append(f'<label>{esc(q.text[lang])} <select name="{esc(ind.id)}">{"".join(opts)}</select></label>')
    return (f'<form id="questionnaire" method="post" action="/ui/adoption/answers" class="form">'
            f'<p><small>{esc(t("adoption.questionnaire.note", lang))}</small></p>{"".join(fields)}'
            f'<button type="submit">{esc(t("adoption.save", lang))}</button></form>')


def _history(history: list[sm.HistoryEntry], lang: Lang) -> str:
    if not history:
        return f'<p>{esc(t("adoption.history.empty", lang))}</p>'
    width, height = 320, 80
    spark = ""
    if len(history) > 1:
        step = width / (len(history) - 1)
        pts = " ".join(f"{i * step:.1f},{height - h.score / 100 * height:.1f}" for i, h in enumerate(history))
        spark = (f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
                 f'<polyline points="{pts}"/></svg>')
    rows_ = [[esc(h.assessed_at.strftime("%Y-%m-%d %H:%M")), esc(str(h.level)), esc(f"{h.score:.1f}")]
             for h in reversed(history[-20:])]
    return spark + table([t("col.time", lang), t("col.level", lang), t("col.score", lang)], rows_)


async def render(c: Ctx, kind: str, key: str, *, report: bool = False, saved: bool = False) -> str:
    lang = c.lang
    title = t("adoption.report" if report else "adoption.title", lang)
    path = f"/adoption{'/report' if report else ''}?scope={kind}&id={key}"
    try:
        model = adoption.model_of(c)
    except AssessmentModelError as exc:
        return page(title, f'<pre class="error">{esc(exc)}</pre>', lang, "adoption", path)
    items = await rows(c)
    all_scopes = adoption.scopes(items)
    scope = next((s for s in all_scopes if s.kind == kind and s.key == key), all_scopes[0])
    given = await adoption.answers(c)
    result = adoption.evaluate(c, model, scope, given)
    history = sm.read_history(await adoption.stored(c, scope))
    picker = " ".join(
        f'<a class="chip{" active" if s is scope else ""}" href="{esc(link("/adoption", scope=s.kind, id=s.key))}">'
        f'{esc(t("adoption.scope." + s.kind, lang))}: {esc(s.label)}</a>' for s in all_scopes)
    labels = [a.name[lang] for a in model.areas]
    area_rows = [[esc(a.name[lang]), esc(f"{result.areas[a.id]:.0f}")] for a in model.areas]
    head = (f'<div class="level"><span>{esc(t("adoption.level", lang))}</span>'
            f'<b id="level">{result.level}</b><em id="level-name">{esc(_level_name(model, result, lang))}</em>'
            f'<span>{esc(t("adoption.score", lang))} <b id="score">{result.score:.1f}</b> / 100</span></div>')
    notes = "" if items else empty(t("empty.fleet.body", lang))
    body = (
        (f'<p class="scopes">{picker}</p>' if not report else
         f'<p>{esc(t("adoption.scope." + scope.kind, lang))}: <b>{esc(scope.label)}</b> · '
         f'{esc(t("adoption.model", lang))}: {esc(model.title[lang])} {esc(model.version)} · '
         f'{esc(c.now.strftime("%Y-%m-%d %H:%M UTC"))}</p>')
        + notes
        + (f'<p class="ok">{esc(t("adoption.saved", lang))}</p>' if saved else "")
        + f'<div class="grid"><section>{head}{_missing(model, result, lang)}</section>'
        + f'<section><h2>{esc(t("adoption.areas", lang))}</h2>'
        + radar(labels, [result.areas[a.id] for a in model.areas])
        + table([t("col.area", lang), t("col.score", lang)], area_rows, cls="areas") + "</section></div>"
        + f'<section><h2>{esc(t("adoption.indicators", lang))}</h2>{_indicators(model, result, lang)}</section>'
        + f'<section><h2>{esc(t("adoption.history", lang))}</h2>{_history(history, lang)}</section>'
    )
    if not report:
        body += (f'<p><a id="report-link" href="{esc(link("/adoption/report", scope=scope.kind, id=scope.key))}">'
                 f'{esc(t("adoption.print", lang))}</a></p>'
                 f'<section><h2>{esc(t("adoption.questionnaire", lang))}</h2>{_questionnaire(model, given, lang)}'
                 "</section>")
    else:
        body = f'<div class="report">{body}</div>'
    return page(title, body, lang, "adoption", path)
