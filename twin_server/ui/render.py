"""The small template approach of the dashboards: escaped HTML built by functions, one page layout.

Every value that goes into HTML passes through :func:`esc` (or :func:`attr`); markup is only ever
assembled from literals and escaped values, so no page can be tricked into running a script by a
twin's content.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from urllib.parse import urlencode

from twin_server.ui.i18n import Lang, t

ROOT = "/ui"
NAV = (("fleet", ""), ("alarms", "/alarms"), ("adoption", "/adoption"), ("catalogue", "/catalogue"))


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def attr(value: object) -> str:
    """A double-quoted attribute value."""
    return f'"{esc(value)}"'


def link(path: str, **query: str) -> str:
    q = {k: v for k, v in query.items() if v}
    return ROOT + path + ("?" + urlencode(q) if q else "")


def data_json(value: object) -> str:
    """JSON for a ``<script type="application/json">`` block (cannot close the script element)."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace(
        "&", "\\u0026")


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, cls: str = "", row_attrs: Sequence[str] = ()) \
        -> str:
    """A table; `rows` cells are HTML already (escape when building them)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        extra = f" {row_attrs[i]}" if i < len(row_attrs) else ""
        body.append(f"<tr{extra}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def empty(text: str) -> str:
    """An empty state: what is missing and what to do; `code` spans in backticks."""
    parts = esc(text).split("`")
    inner = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    return f'<div class="empty">{inner}</div>'


def page(title: str, body: str, lang: Lang, active: str, path: str, *, scripts: Sequence[str] = (),
         data: object = None) -> str:
    """The whole document. `path` is this page's path under /ui (the language switch links back to it)."""
    other: Lang = "ko" if lang == "en" else "en"
    sep = "&" if "?" in path else "?"
    nav = "".join(
        f'<a href={attr(ROOT + p)}{" class=active" if key == active else ""}>{esc(t("nav." + key, lang))}</a>'
        for key, p in NAV)
    script_tags = "".join(f'<script src={attr(ROOT + "/static/" + s)} defer></script>' for s in scripts)
    data_block = (f'<script type="application/json" id="page-data">{data_json(data)}</script>'
                  if data is not None else "")
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · TwinEdge</title>"
        f'<link rel="stylesheet" href="{ROOT}/static/app.css">'
        f'<link rel="icon" href="{ROOT}/static/favicon.svg" type="image/svg+xml">'
        f"{data_block}{script_tags}</head>"
        f'<body data-lang="{lang}"><header><span class="brand">TwinEdge</span><nav>{nav}</nav>'
        f'<a id="lang-switch" class="lang" href={attr(ROOT + path + sep + "lang=" + other)}>'
        f'{esc(t("lang.switch", lang))}</a></header>'
        f"<main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"
