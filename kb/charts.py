"""Charts as inline SVG, generated in Python: the health report needs no script and no network
to draw them, prints as it shows, and every mark carries its number (``data-value``, a ``<title>``
tooltip) so the page can be read by a person, a screen reader and a test alike.

Each chart is ``<svg class="chart" data-chart=NAME data-points=N>``: N is the number of data marks
(bars, points, arcs) drawn. Every label and title is escaped; callers pass plain text.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["hbar", "stacked_hbar", "stacked_columns", "lines", "gauge", "legend", "COLORS", "empty"]

COLORS = {
    "error": "#c93c3c",
    "warning": "#d99a00",
    "info": "#3f7fc4",
    "ok": "#2e9058",
    "neutral": "#7a869a",
    "added": "#2e9058",
    "changed": "#3f7fc4",
    "removed": "#c93c3c",
    "moved": "#8a63c4",
    "broken": "#d99a00",
    "missing": "#d99a00",
    "differing": "#c93c3c",
    "duplicated": "#c96f3c",
    "unique": "#9fb3c8",
    "valid": "#2e9058",
    "violating": "#c93c3c",
    "not checkable": "#d99a00",
    "no schema": "#9fb3c8",
}
_FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif"'


def _num(v: float) -> str:
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.2f}".rstrip("0").rstrip(".")
    return f"{int(v):,}"


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else "…" + text[-(n - 1) :]


def empty(message: str) -> str:
    return f'<p class="empty">{escape(message)}</p>'


def _svg(name: str, points: int, width: int, height: int, label: str, body: str) -> str:
    return (
        f'<svg class="chart" data-chart="{escape(name)}" data-points="{points}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" preserveAspectRatio="xMinYMin meet" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg" {_FONT} font-size="12">{body}</svg>'
    )


def hbar(
    name: str,
    label: str,
    items: Sequence[tuple[str, float, str]],
    *,
    unit: str = "",
    width: int = 580,
    label_width: int = 240,
    max_value: float | None = None,
    percent: bool = False,
) -> str:
    """Horizontal bars: ``items`` is ``(label, value, color)``; a bar's length is value / max."""
    if not items:
        return empty("Nothing to chart.")
    row, gap = 20, 6
    height = len(items) * (row + gap) + gap
    top = max_value if max_value is not None else max((v for _, v, _ in items), default=0) or 1
    span = width - label_width - 90
    parts = []
    for i, (text, value, color) in enumerate(items):
        y = gap + i * (row + gap)
        w = max(1.5, span * (value / top)) if value > 0 else 0
        shown = f"{value * 100:.1f}%" if percent else _num(value) + unit
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 14}" text-anchor="end" fill="#333">{escape(_short(text, 32))}</text>'
            f'<rect class="bar" data-value="{value}" x="{label_width}" y="{y}" width="{w:.1f}" height="{row}" '
            f'rx="3" fill="{color}"><title>{escape(text)}: {escape(shown)}</title></rect>'
            f'<text x="{label_width + w + 6:.1f}" y="{y + 14}" fill="#333">{escape(shown)}</text>'
        )
    return _svg(name, len(items), width, height, label, "".join(parts))


def stacked_hbar(
    name: str,
    label: str,
    rows: Sequence[tuple[str, Sequence[tuple[str, float]]]],
    *,
    width: int = 580,
    label_width: int = 240,
) -> str:
    """Horizontal stacked bars: ``rows`` is ``(label, [(series, value), ...])``."""
    rows = [(t, [(s, v) for s, v in segs if v > 0]) for t, segs in rows]
    rows = [(t, segs) for t, segs in rows if segs]
    if not rows:
        return empty("Nothing to chart.")
    row, gap = 20, 6
    height = len(rows) * (row + gap) + gap
    top = max(sum(v for _, v in segs) for _, segs in rows) or 1
    span = width - label_width - 90
    parts, marks = [], 0
    for i, (text, segs) in enumerate(rows):
        y = gap + i * (row + gap)
        x = float(label_width)
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 14}" text-anchor="end" fill="#333">{escape(_short(text, 32))}</text>'
        )
        for series, value in segs:
            w = max(1.5, span * value / top)
            parts.append(
                f'<rect class="bar" data-series="{escape(series)}" data-value="{value}" x="{x:.1f}" y="{y}" '
                f'width="{w:.1f}" height="{row}" fill="{COLORS.get(series, COLORS["neutral"])}">'
                f"<title>{escape(text)}, {escape(series)}: {_num(value)}</title></rect>"
            )
            x += w
            marks += 1
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 14}" fill="#333">{_num(sum(v for _, v in segs))}</text>')
    return _svg(name, marks, width, height, label, "".join(parts))


def stacked_columns(
    name: str,
    label: str,
    columns: Sequence[tuple[str, Sequence[tuple[str, float]]]],
    *,
    width: int = 560,
    height: int = 200,
) -> str:
    """Vertical stacked columns (e.g. changes per run): ``(x label, [(series, value), ...])``."""
    if not columns or not any(v > 0 for _, segs in columns for _, v in segs):
        return empty("Nothing to chart.")
    left, bottom, top_pad = 44, 28, 10
    plot_h = height - bottom - top_pad
    top = max(sum(v for _, v in segs) for _, segs in columns) or 1
    step = (width - left - 10) / len(columns)
    bar_w = max(3.0, min(36.0, step * 0.7))
    parts = [
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 5}" y2="{height - bottom}" stroke="#999"/>',
        f'<text x="{left - 6}" y="{top_pad + 10}" text-anchor="end" fill="#555">{_num(top)}</text>',
        f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end" fill="#555">0</text>',
    ]
    marks = 0
    every = max(1, len(columns) // 12)
    for i, (xlabel, segs) in enumerate(columns):
        x = left + i * step + (step - bar_w) / 2
        y = float(height - bottom)
        for series, value in segs:
            if value <= 0:
                continue
            h = max(1.5, plot_h * value / top)
            y -= h
            parts.append(
                f'<rect class="bar" data-series="{escape(series)}" data-value="{value}" x="{x:.1f}" '
                f'y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{COLORS.get(series, COLORS["neutral"])}"><title>{escape(xlabel)}, {escape(series)}: '
                f"{_num(value)}</title></rect>"
            )
            marks += 1
        if i % every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                f'fill="#555">{escape(_short(xlabel, 10))}</text>'
            )
    return _svg(name, marks, width, height, label, "".join(parts))


def lines(
    name: str,
    label: str,
    xlabels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None], str]],
    *,
    width: int = 560,
    height: int = 200,
    y_max: float | None = None,
    unit: str = "",
) -> str:
    """A line chart: one polyline per ``(series name, values, color)`` over ``xlabels``."""
    n = len(xlabels)
    values = [v for _, vals, _ in series for v in vals if v is not None]
    if n == 0 or not values:
        return empty("Nothing to chart.")
    left, bottom, top_pad, right = 44, 28, 12, 14
    plot_w, plot_h = width - left - right, height - bottom - top_pad
    top = y_max if y_max is not None else (max(values) or 1)
    lo = 0.0

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)
        y = top_pad + plot_h * (1 - (v - lo) / ((top - lo) or 1))
        return x, y

    parts = [
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{height - bottom}" stroke="#ddd"/>',
        f'<text x="{left - 6}" y="{top_pad + 4}" text-anchor="end" fill="#555">{_num(top)}{escape(unit)}</text>',
        f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end" fill="#555">0</text>',
    ]
    marks = 0
    every = max(1, n // 10)
    for i, xl in enumerate(xlabels):
        if i % every == 0 or i == n - 1:
            x, _ = xy(i, 0)
            parts.append(
                f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle" fill="#555">'
                f"{escape(_short(xl, 10))}</text>"
            )
    for sname, vals, color in series:
        pts = [(i, v) for i, v in enumerate(vals) if v is not None]
        if not pts:
            continue
        if len(pts) > 1:
            coords = " ".join(f"{xy(i, v)[0]:.1f},{xy(i, v)[1]:.1f}" for i, v in pts)
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>')
        for i, v in pts:
            x, y = xy(i, v)
            parts.append(
                f'<circle class="point" data-series="{escape(sname)}" data-value="{v}" cx="{x:.1f}" '
                f'cy="{y:.1f}" r="3.5" fill="{color}"><title>{escape(sname)}, {escape(xlabels[i])}: '
                f"{_num(v)}{escape(unit)}</title></circle>"
            )
            marks += 1
    return _svg(name, marks, width, height, label, "".join(parts))


def gauge(name: str, label: str, score: float, grade: str, color: str) -> str:
    """A ring showing ``score`` out of 100, the score and grade in the middle."""
    import math

    r, cx, cy, w = 62, 80, 80, 16
    frac = max(0.0, min(1.0, score / 100))
    circ = 2 * math.pi * r
    body = (
        f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="none" stroke="#e6e9ee" stroke-width="{w}"/>'
        f'<circle class="arc" data-value="{score}" cx="{cx}" cy="{cy}" r="{r}" fill="none" stroke="{color}" '
        f'stroke-width="{w}" stroke-dasharray="{circ * frac:.2f} {circ:.2f}" transform="rotate(-90 {cx} {cy})">'
        f"<title>health score {score:.1f} / 100</title></circle>"
        f'<text x="{cx}" y="{cy + 4}" text-anchor="middle" font-size="28" font-weight="700" fill="#222">'
        f"{score:.1f}</text>"
        f'<text x="{cx}" y="{cy + 26}" text-anchor="middle" font-size="14" fill="#555">grade {escape(grade)}</text>'
    )
    return _svg(name, 1, 160, 160, label, body)


def legend(series: Sequence[str]) -> str:
    return (
        '<p class="legend">'
        + "".join(
            f'<span><i style="background:{COLORS.get(s, COLORS["neutral"])}"></i>{escape(s)}</span>' for s in series
        )
        + "</p>"
    )
