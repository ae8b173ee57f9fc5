"""The lab in the terminal (rich): the figures beside the rules', and the timelines as text.

Everything fits 80 columns, in English and in Korean (rich measures Hangul as two columns).
A timeline row holds two lanes (upper and lower half of a block character), so 100 requests
take 50 rows; past `rows` rows per panel, evenly spaced lanes are shown and the panel says so.
Each panel's time scale stands in bold in its title; `--scale shared` gives every panel one.
"""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from kata_tools.lab.modes import MSG
from kata_tools.lab.results import PHASES, ModeResult, phase_label
from kata_tools.lab.svg import COLORS, SERVER_COLOR, headline, lane_order, nice_step, seconds, span

VERDICT_STYLE = {"met": "green", "busy": "yellow", "missed": "bold red"}


def legend() -> Text:
    """One phase a line: a legend that never wraps mid-label in 80 columns."""
    text = Text()
    for phase, _, _ in PHASES:
        text.append("██", style=COLORS[phase])
        text.append(f" {phase_label(phase)}\n")
    text.append("░░", style=SERVER_COLOR)
    text.append(f" {phase_label('server')}\n")
    text.append(MSG("legend-predicted"), style="grey50")
    return text


def table(results: list[ModeResult], loop: str = "", http: str = "") -> Table:
    s = results[0].settings
    t = Table(
        title=MSG("title", n=s.clients, t=f"{s.latency:g}"),
        caption=MSG("table-note", n=s.clients) + ("\n" + MSG("engine", loop=loop, http=http) if loop else ""),
        title_justify="left",
        caption_justify="left",
        box=box.SIMPLE_HEAD,  # no vertical rules: seven columns fit 80 in both languages
        pad_edge=False,
    )
    t.add_column(MSG("col-mode"), min_width=18, max_width=26, overflow="fold")
    t.add_column(MSG("col-rule"))
    t.add_column(MSG("col-measured"), justify="right")
    t.add_column(MSG("col-rule-figure"), justify="right")
    t.add_column(MSG("col-server"), justify="right")
    t.add_column(MSG("col-ratio"), justify="right")
    t.add_column(MSG("col-verdict"))
    for r in results:
        verdict = ""
        if r.verdict is not None:
            verdict = f"{r.bar}\n[{VERDICT_STYLE[r.verdict]}]{MSG('verdict-' + r.verdict)}[/]"
        t.add_row(
            f"{r.mode.name}\n[dim]{r.mode.how(s)}[/]",
            r.mode.rule,
            seconds(r.measured) + (f"\n[red]{len(r.errors)} ✗[/]" if r.errors else ""),
            seconds(r.predicted),
            seconds(r.server_cost),
            "-" if r.ratio is None else f"{r.ratio:.2f}",
            verdict,
        )
    return t


def _phase_at(spans, t: float):
    for phase, a, b in spans:
        if a <= t < b:
            return phase
    return None


def timeline(result: ModeResult, width: int, rows: int, t_shared: float | None = None) -> Panel:
    """One mode's lanes as block characters, with a time axis, the rule's figure and the server cost."""
    lanes = lane_order(result.lanes)
    n = len(lanes)
    shown = lanes
    if n > 2 * rows:
        shown = [lanes[round(k * (n - 1) / (2 * rows - 1))] for k in range(2 * rows)]
    cols = max(20, min(width, 80) - 4)
    t_max = t_shared or span(result)
    centers = [(c + 0.5) * t_max / cols for c in range(cols)]
    lines = [Text(headline(result), style="dim")]
    if len(shown) < n:
        lines.append(Text(MSG("lanes-shown", shown=len(shown), n=n), style="dim"))
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
    # The axis: ticks at round times, the rule's figure ▲, the rule plus the server's cost △,
    # and the stretch between them shaded: the part of the total that is this server's own work.
    axis = ["─"] * cols
    labels = [" "] * cols
    step = nice_step(t_max, ticks=max(2, cols // 12))
    k = 0
    while k * step <= t_max:
        col = min(cols - 1, int(k * step / t_max * cols))
        axis[col] = "┴"
        label = f"{k * step:g}"
        if col + len(label) <= cols:  # a label that would run off the panel is left out
            labels[col : col + len(label)] = label
        k += 1
    rule_col = min(cols - 1, int(result.predicted / t_max * cols))
    cost_col = min(cols - 1, int(result.expected / t_max * cols))
    for col in range(rule_col + 1, cost_col):
        axis[col] = "░"
    axis[cost_col] = "△"
    axis[rule_col] = "▲"
    axis_text = Text("".join(axis), style="grey50")
    axis_text.stylize(SERVER_COLOR, rule_col + 1, cost_col + 1)
    axis_text.stylize("bold #e63946", rule_col, rule_col + 1)
    lines += [axis_text, Text("".join(labels).rstrip(), style="grey50")]
    return Panel(
        Group(*lines),
        title=f"[bold]{result.mode.name}[/] · {result.mode.rule} · "
        f"[bold]{MSG('scale', t_max=f'{t_max:.2g}')}[/]",
        subtitle=result.mode.how(result.settings),
        title_align="left",
        subtitle_align="left",
        padding=(0, 1),
        width=min(width, 80),
    )


def verdicts(results: list[ModeResult]) -> list[str]:
    """One line per judged mode: met, busy (names the load), or MISSED with what dominated."""
    judged = [r for r in results if r.verdict is not None and r.ratio is not None]
    if not judged:
        return []
    lines = [MSG("bars-head")]
    for r in judged:
        machine = r.machine
        load = "?" if machine is None or machine.load is None else f"{machine.load:g}"
        fields = dict(mode=r.mode.name, ratio=f"{r.ratio:.2f}", bar=str(r.bar), load=load)
        if r.verdict == "met":
            lines.append("  " + MSG("bar-line-met", raw=f"{r.raw_ratio:.2f}", **fields))
        elif r.verdict == "busy":
            # "busy" is only said of a machine that measured other programs' share (Machine.busy)
            assert machine is not None and machine.others is not None
            lines.append(
                "  " + MSG("bar-line-busy", cpus=machine.cpus, share=f"{100 * machine.others:.0f}", **fields)
            )
        else:
            cause = MSG(f"cause-{r.dominant_delay()}")
            lines.append("  " + MSG("bar-line-missed", cause=cause, **fields))
    return lines
