"""Reference-model catalogue page: models, versions, status, diff between versions, AASX download."""

from __future__ import annotations

from twin_server.ui import catalogue
from twin_server.ui.context import Ctx
from twin_server.ui.i18n import t
from twin_server.ui.render import empty, esc, link, page, table


def render(c: Ctx, equipment_type: str | None = None, old: str | None = None, new: str | None = None) -> str:
    lang = c.lang
    models = catalogue.scan(c.settings.reference_models)
    if not models:
        return page(t("catalogue.title", lang), empty(t("empty.catalogue", lang)), lang, "catalogue", "/catalogue")
    rows = []
    for m in models:
        download = (f'<a href="{esc(link("/catalogue/aasx", type=m.equipment_type, version=m.version))}">AASX</a>'
                    if m.environment_file else "–")
        rows.append([f"{esc(m.name(lang))}<br><small>{esc(m.equipment_type)}</small>", esc(m.version),
                     f'<span class="status status-{esc(m.status)}">{esc(m.status)}</span>', esc(m.people()),
                     esc("; ".join(m.changes())), download])
    parts = [table([t("col.model", lang), t("col.version", lang), t("col.status", lang), t("col.owners", lang),
                    t("col.changes", lang), t("col.download", lang)], rows, cls="catalogue")]
    by_type: dict[str, list[str]] = {}
    for m in models:
        by_type.setdefault(m.equipment_type, []).append(m.version)
    forms = []
    for kind, versions in by_type.items():
        if len(versions) < 2:
            continue
        opts_old = "".join(f'<option{" selected" if v == (old or versions[-2]) else ""}>{esc(v)}</option>'
                           for v in versions)
        opts_new = "".join(f'<option{" selected" if v == (new or versions[-1]) else ""}>{esc(v)}</option>'
                           for v in versions)
        forms.append(f'<form method="get" action="/ui/catalogue" class="diff-form"><input type="hidden" name="type" '
                     f'value="{esc(kind)}"><b>{esc(kind)}</b> <select name="old">{opts_old}</select> → '
                     f'<select name="new">{opts_new}</select> <button>{esc(t("catalogue.compare", lang))}</button>'
                     "</form>")
    if forms:
        parts.append(f'<h2>{esc(t("catalogue.diff", lang))}</h2>' + "".join(forms))
    if equipment_type and old and new:
        a = catalogue.find(c.settings.reference_models, equipment_type, old)
        b = catalogue.find(c.settings.reference_models, equipment_type, new)
        if a and b:
            d = catalogue.diff(a, b)
            lines = ([f'<li class="add">+ {esc(k)} <small>{esc(v)}</small></li>' for k, v in d.added]
                     + [f'<li class="del">− {esc(k)} <small>{esc(v)}</small></li>' for k, v in d.removed]
                     + [f'<li class="chg">~ {esc(k)} <small>{esc(x)} → {esc(y)}</small></li>' for k, x, y in d.changed])
            summary = (f'{len(d.added)} {esc(t("catalogue.added", lang))}, {len(d.removed)} '
                       f'{esc(t("catalogue.removed", lang))}, {len(d.changed)} {esc(t("catalogue.changed", lang))}')
            parts.append(f'<section id="diff"><h3>{esc(equipment_type)} {esc(old)} → {esc(new)}: {summary}</h3>'
                         + (f'<ul class="diff">{"".join(lines)}</ul>' if lines else
                            f'<p>{esc(t("catalogue.same", lang))}</p>') + "</section>")
    return page(t("catalogue.title", lang), "".join(parts), lang, "catalogue", "/catalogue")
