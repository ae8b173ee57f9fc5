"""The lab's picture as an SVG file: one panel per mode, one lane per request, written by hand.

Each lane is a request, in the order its query started, drawn in its four phases (waiting for
a worker, waiting for a connection, the query, the reply). Faint vertical lines mark every
multiple of T, where a new wave can start; a dashed line marks the rule's figure, and a shaded
band after it this server's own cost (measured with T = 0). Labels are in the current language;
the fonts listed first render Hangul (DejaVu Sans has none).
"""

from __future__ import annotations

import math
from xml.sax.saxutils import escape, quoteattr

from kata_tools.lab.modes import MSG
from kata_tools.lab.results import PHASES, Lane, ModeResult, phase_label

COLORS = {
    "worker": "#f4a261",  # amber: queued for a thread, or for a loop someone is blocking
    "connection": "#e63946",  # red: queued for a pool connection
    "query": "#2a9d8f",  # teal: the query runs in PostgreSQL
    "reply": "#8d99ae",  # grey: the reply travels back
}
SERVER_COLOR = "#e9c46a"  # sand: the server's own cost, after the rule's figure
WIDTH = 1000
LEFT, RIGHT = 60, 30  # plot margins
PLOT_HEIGHT = 240  # lanes share this height (each at least 1 px, at most 10 px)
# Hangul-capable fonts first (Windows, macOS, Linux, the web), then Latin ones.
FONT = (
    "font-family=\"'Malgun Gothic', 'Apple SD Gothic Neo', 'Noto Sans CJK KR', 'Noto Sans KR', "
    "NanumGothic, 'DejaVu Sans', Helvetica, Arial, sans-serif\""
)


def lane_order(lanes: list[Lane]) -> list[Lane]:
    """Lanes in the order their query started: waves then show as steps."""
    return sorted(
        lanes, key=lambda lane: (lane.acquired if lane.acquired is not None else math.inf, lane.sent, lane.i)
    )


def nice_step(span: float, ticks: int = 8) -> float:
    """A round tick step (1, 2 or 5 x 10^k) giving about `ticks` ticks over `span`."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def seconds(x: float) -> str:
    return f"{x:.3f} s" if x < 1 else f"{x:.2f} s"


def headline(result: ModeResult) -> str:
    parts = [
        MSG(
            "headline",
            measured=seconds(result.measured),
            rule=seconds(result.predicted),
            formula=result.mode.formula(result.settings),
            server=seconds(result.server_cost),
            p50=seconds(result.latency(50)),
            p95=seconds(result.latency(95)),
            peak=result.peak_queries,
        )
    ]
    if result.ratio is not None and result.verdict is not None:
        parts.append(f"{result.ratio:.2f} {result.bar}: {MSG('verdict-' + result.verdict)}")
    if result.errors:
        parts.append(f"{len(result.errors)} ✗")
    return " · ".join(parts)


def _text(x, y, content, size=12, weight="normal", fill="#222", anchor="start") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" font-weight="{weight}" '
        f'fill="{fill}" text-anchor="{anchor}">{escape(content)}</text>'
    )


def _panel(result: ModeResult, top: float, t_max: float) -> tuple[list[str], float]:
    """SVG elements of one mode's panel starting at y=top; returns them and the panel height."""
    s = result.settings
    n = len(result.lanes)
    lane_h = max(1.0, min(10.0, PLOT_HEIGHT / max(n, 1)))
    plot_top = top + 58
    plot_h = lane_h * n
    plot_w = WIDTH - LEFT - RIGHT

    def x(t: float) -> float:
        return LEFT + plot_w * min(max(t, 0.0), t_max) / t_max

    out = [f'<g class="panel" data-mode={quoteattr(result.mode.name)}>']
    title = MSG("svg-panel", mode=result.mode.name, how=result.mode.how(s), rule=result.mode.rule)
    out.append(_text(LEFT, top + 16, title, size=14, weight="bold"))
    out.append(
        _text(
            WIDTH - RIGHT, top + 16, MSG("scale", t_max=f"{t_max:.2g}"), size=14, weight="bold", anchor="end"
        )
    )
    out.append(_text(LEFT, top + 34, headline(result), size=11, fill="#444"))
    out.append(
        f'<rect x="{LEFT}" y="{plot_top:.1f}" width="{plot_w}" height="{plot_h:.1f}" '
        f'fill="#f8f9fa" stroke="#ced4da" stroke-width="0.5"/>'
    )
    # Every multiple of T: where a wave can begin. Skipped when they would fill the panel.
    if s.latency > 0 and t_max / s.latency <= 150:
        k = 1
        while k * s.latency < t_max:
            xx = x(k * s.latency)
            out.append(
                f'<line class="wave" x1="{xx:.1f}" y1="{plot_top:.1f}" x2="{xx:.1f}" '
                f'y2="{plot_top + plot_h:.1f}" stroke="#dee2e6" stroke-width="0.7"/>'
            )
            k += 1
    # This server's own cost, after the rule's figure: the part of the total no rule predicts
    # (drawn first, behind the lanes).
    xe = x(result.expected)
    out.append(
        f'<rect class="server-cost" x="{x(result.predicted):.1f}" y="{plot_top:.1f}" '
        f'width="{max(xe - x(result.predicted), 0):.1f}" height="{plot_h:.1f}" '
        f'fill="{SERVER_COLOR}" fill-opacity="0.35"/>'
    )
    for row, lane in enumerate(lane_order(result.lanes)):
        y = plot_top + row * lane_h
        out.append(f'<g class="lane" data-request="{lane.i}">')
        for phase, a, b in lane.spans():
            out.append(
                f'<rect class="{phase}" x="{x(a):.2f}" y="{y:.2f}" '
                f'width="{max(x(b) - x(a), 0.4):.2f}" height="{max(lane_h - 0.3, 0.7):.2f}" '
                f'fill="{COLORS[phase]}"/>'
            )
        if lane.error:
            out.append(
                f'<rect class="error" x="{x(lane.ended or 0) - 3:.2f}" y="{y:.2f}" width="3" '
                f'height="{max(lane_h, 1):.2f}" fill="#000"><title>{escape(lane.error)}</title></rect>'
            )
        out.append("</g>")
    # The total the rules predict.
    xp = x(result.predicted)
    out.append(
        f'<line class="predicted" x1="{xp:.1f}" y1="{plot_top - 4:.1f}" x2="{xp:.1f}" '
        f'y2="{plot_top + plot_h + 4:.1f}" stroke="#6a040f" stroke-width="1.2" '
        f'stroke-dasharray="4 3"/>'
    )
    out.append(_text(xp - 4, plot_top - 6, MSG("svg-predicted"), size=10, fill="#6a040f", anchor="end"))
    # Time axis.
    axis_y = plot_top + plot_h
    step = nice_step(t_max)
    k = 0
    while k * step <= t_max + 1e-9:
        xx = x(k * step)
        out.append(
            f'<line x1="{xx:.1f}" y1="{axis_y:.1f}" x2="{xx:.1f}" y2="{axis_y + 4:.1f}" '
            f'stroke="#495057" stroke-width="0.8"/>'
        )
        out.append(_text(xx, axis_y + 15, f"{k * step:g}", size=10, fill="#495057", anchor="middle"))
        k += 1
    out.append(_text(LEFT - 8, axis_y + 15, "s", size=10, fill="#495057", anchor="end"))
    out.append(
        _text(LEFT - 8, plot_top + 10, MSG("svg-requests", n=n), size=10, fill="#495057", anchor="end")
    )
    out.append("</g>")
    return out, (plot_top - top) + plot_h + 34


def render(results: list[ModeResult], shared: bool = False) -> str:
    """The whole picture, as the text of an SVG document (shared: one time scale for all panels)."""
    s = results[0].settings
    body = [_text(LEFT, 26, MSG("svg-title", n=s.clients, t=f"{s.latency:g}"), size=15, weight="bold")]
    x: float = LEFT
    for phase in [p for p, _, _ in PHASES] + ["server"]:
        label = phase_label(phase)
        body.append(f'<rect x="{x}" y="38" width="12" height="12" fill="{COLORS.get(phase, SERVER_COLOR)}"/>')
        body.append(_text(x + 16, 48, label, size=11))
        x += 26 + 6.2 * sum(2 if ord(ch) > 0x1100 else 1 for ch in label)
    body.append(_text(LEFT, 66, MSG("svg-explain-1"), size=11, fill="#555"))
    body.append(
        _text(
            LEFT,
            80,
            MSG("svg-explain-2") + " " + MSG("svg-scale-shared" if shared else "svg-scale-each"),
            size=11,
            fill="#555",
        )
    )
    top = 92.0
    common = max(span(r) for r in results)
    for result in results:
        elements, height = _panel(result, top, common if shared else span(result))
        body += elements
        top += height + 10
    height = math.ceil(top + 10)
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" {FONT}>',
            f"<title>{escape(MSG('svg-doc-title'))}</title>",
            f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
            *body,
            "</svg>",
            "",
        ]
    )


def span(result: ModeResult) -> float:
    return max(result.measured, result.expected, 1e-6) * 1.03
