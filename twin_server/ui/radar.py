"""A radar (spider) chart as inline SVG, drawn on the server so that it also prints."""

from __future__ import annotations

import math
from collections.abc import Sequence

from twin_server.ui.render import esc


def radar(labels: Sequence[str], values: Sequence[float], *, size: int = 460, maximum: float = 100) -> str:
    """One polygon of `values` (0..maximum) over len(labels) axes, with rings at 25 % steps."""
    n = len(labels)
    if n < 3:
        return ""
    cx = cy = size / 2
    r = size / 2 - 130

    def point(i: int, frac: float) -> tuple[float, float]:
        angle = -math.pi / 2 + 2 * math.pi * i / n
        return cx + r * frac * math.cos(angle), cy + r * frac * math.sin(angle)

    parts = [f'<svg class="radar" viewBox="0 0 {size} {size}" width="{size}" height="{size}" role="img">']
    for ring in (0.25, 0.5, 0.75, 1.0):
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (point(i, ring) for i in range(n)))
        parts.append(f'<polygon class="ring" points="{pts}"/>')
    for i, label in enumerate(labels):
        x, y = point(i, 1.0)
        lx, ly = point(i, 1.18)
        anchor = "middle" if abs(lx - cx) < 10 else ("start" if lx > cx else "end")
        parts.append(f'<line class="axis" x1="{cx}" y1="{cy}" x2="{x:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" dominant-baseline="middle">'
                     f"{esc(label)}</text>")
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in
                   (point(i, max(0.0, min(1.0, v / maximum))) for i, v in enumerate(values)))
    parts.append(f'<polygon class="value" points="{pts}"/>')
    parts.append("</svg>")
    return "".join(parts)
