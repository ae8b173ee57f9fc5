"""The lab in the terminal (rich): the figures beside the rules', and the timelines as text.

A timeline row holds two lanes (upper and lower half of a block character), so 100 requests
take 50 rows; past `rows` rows per panel, evenly spaced lanes are shown and the panel says so.
"""

from __future__ import annotations

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from kata_tools.lab.results import PHASES, ModeResult
from kata_tools.lab.svg import COLORS, headline, lane_order, nice_step, seconds


def legend() -> Text:
    text = Text()
    for phase, _, _, label in PHASES:
        text.append("██", style=COLORS[phase])
        text.append(f" {label}   ")
    return text


def table(results: list[ModeResult]) -> Table:
    s = results[0].settings
    t = Table(
        title=f"{s.clients} requests at once, each waiting {s.latency:g} s on PostgreSQL",
        title_justify="left",
    )
    t.add_column("mode (how it runs)")
    t.add_column("rule")
    t.add_column("measured", justify="right")
    t.add_column("predicted (rules)", justify="right")
    t.add_column("ratio", justify="right")
    t.add_column("bar")
    t.add_column("p50", justify="right")
    t.add_column("p95", justify="right")
    t.add_column("at once", justify="right")
    for r in results:
        bar = ""
        if r.bar is not None:
            bar = f"{r.bar} " + ("[green]met[/]" if r.bar_met else "[bold red]missed[/]")
        t.add_row(
            f"{r.mode.name}\n[dim]{r.mode.how(s)}[/]",
            r.mode.rule,
            seconds(r.measured),
            f"{seconds(r.predicted)}\n[dim]{r.mode.formula(s)}[/]",
            "-" if r.ratio is None else f"{r.ratio:.2f}",
            bar,
            seconds(r.latency(50)),
            seconds(r.latency(95)),
            str(r.peak_queries) + (f"\n[red]{len(r.errors)} failed[/]" if r.errors else ""),
        )
    return t


def _phase_at(spans, t: float):
    for phase, a, b in spans:
        if a <= t < b:
            return phase
    return None


def timeline(result: ModeResult, width: int, rows: int) -> Panel:
    """One mode's lanes as block characters, with a time axis and the predicted total marked."""
    lanes = lane_order(result.lanes)
    n = len(lanes)
    shown = lanes
    if n > 2 * rows:
        shown = [lanes[round(k * (n - 1) / (2 * rows - 1))] for k in range(2 * rows)]
    cols = max(20, width - 4)
    t_max = max(result.measured, result.predicted, 1e-6) * 1.03
    centers = [(c + 0.5) * t_max / cols for c in range(cols)]
    note = ""
    if len(shown) < n:
        note = f" · {len(shown)} of {n} lanes shown, evenly spaced (the SVG has every lane)"
    lines = [Text(headline(result) + " · ▲ predicted" + note, style="dim")]
    for r in range(0, len(shown), 2):
        upper = shown[r].spans()
        lower = shown[r + 1].spans() if r + 1 < len(shown) else []
        line = Text()
        for t in centers:
            a, b = _phase_at(upper, t), _phase_at(lower, t)
            if a and b:
                line.append("▀", style=f"{COLORS[a]} on {COLORS[b]}")
            elif a:
                line.append("▀", style=COLORS[a])
            elif b:
                line.append("▄", style=COLORS[b])
            else:
                line.append(" ")
        lines.append(line)
    # The axis: ticks at round times, the predicted total as a red mark.
    axis = ["─"] * cols
    labels = [" "] * (cols + 8)
    step = nice_step(t_max, ticks=max(2, cols // 12))
    k = 0
    while k * step <= t_max:
        col = min(cols - 1, int(k * step / t_max * cols))
        axis[col] = "┴"
        for j, ch in enumerate(f"{k * step:g}"):
            labels[col + j] = ch
        k += 1
    predicted_col = min(cols - 1, int(result.predicted / t_max * cols))
    axis[predicted_col] = "▲"
    axis_text = Text("".join(axis), style="grey50")
    axis_text.stylize("bold #e63946", predicted_col, predicted_col + 1)
    lines += [axis_text, Text("".join(labels).rstrip() + " s", style="grey50")]
    return Panel(
        Group(*lines),
        title=f"[bold]{result.mode.name}[/] · {result.mode.how(result.settings)} · {result.mode.rule}",
        title_align="left",
        padding=(0, 1),
    )
