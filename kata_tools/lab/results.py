"""What one mode measured: a lane per request, and the figures the lab prints beside the rules'."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from kata_tools.lab.client import Timing
from kata_tools.lab.modes import MSG, Mode, Settings

# The four phases of a request, in order, with the instants that bound them.
PHASES = (
    ("worker", "sent", "started"),
    ("connection", "started", "acquired"),
    ("query", "acquired", "done"),
    ("reply", "done", "ended"),
)


def phase_label(phase: str) -> str:
    """A phase's legend, in the current language ("server": the calibrated server cost)."""
    return MSG(f"phase-{phase}")


# Other programs using more than this share of the machine's CPUs during a mode make its figure
# say more about the machine than about the rule (one core saturated on two cores: 0.5).
BUSY_SHARE = 0.3


@dataclass
class Lane:
    """One request: instants in seconds after the mode's first request was sent."""

    i: int
    sent: float
    ended: float  # burst() times the end of every reply, failed or not
    started: float | None = None
    acquired: float | None = None
    done: float | None = None
    on_loop: bool | None = None  # did the handler run on the event loop's thread?
    thread: int | None = None
    error: str | None = None

    def spans(self) -> list[tuple[str, float, float]]:
        """(phase, start, end) of each phase this request went through."""
        out = []
        for phase, begin, end in PHASES:
            a, b = getattr(self, begin), getattr(self, end)
            if a is not None and b is not None:
                out.append((phase, a, max(a, b)))
        return out


@dataclass
class Machine:
    """What else the machine did while a mode ran: the load average, and other programs' CPU."""

    cpus: int
    load: float | None = None  # the 1-minute load average at the end of the mode
    others: float | None = None  # share of all CPUs used by programs not of the lab, 0..1

    @property
    def busy(self) -> bool:
        return self.others is not None and self.others > BUSY_SHARE


@dataclass
class ModeResult:
    mode: Mode
    settings: Settings
    lanes: list[Lane] = field(default_factory=list)
    server_cost: float = 0.0  # the same burst with T = 0: what N requests cost this server
    machine: Machine | None = None

    @classmethod
    def build(cls, mode: Mode, settings: Settings, timings: list[Timing], records: list[dict]):
        t0 = min(t.sent for t in timings)
        by_id = {r["i"]: r for r in records}

        def rel(x):
            return None if x is None else x - t0

        lanes = []
        for t in timings:
            r = by_id.get(t.i, {})
            lanes.append(
                Lane(
                    i=t.i,
                    sent=rel(t.sent),
                    ended=rel(t.ended),
                    started=rel(r.get("started")),
                    acquired=rel(r.get("acquired")),
                    done=rel(r.get("done")),
                    on_loop=r.get("on_loop"),
                    thread=r.get("thread"),
                    error=t.error or (None if r else "the server recorded no query"),
                )
            )
        return cls(mode, settings, lanes)

    # --- figures --------------------------------------------------------------------------------

    @property
    def ok(self) -> list[Lane]:
        return [lane for lane in self.lanes if lane.error is None]

    @property
    def errors(self) -> list[str]:
        return [f"request {lane.i}: {lane.error}" for lane in self.lanes if lane.error]

    @property
    def measured(self) -> float:
        """From the first request sent to the last reply received."""
        return max(lane.ended for lane in self.lanes) - min(lane.sent for lane in self.lanes)

    @property
    def predicted(self) -> float:
        return self.mode.predicted(self.settings)

    @property
    def expected(self) -> float:
        """The rule's figure plus this server's own cost, measured with T = 0."""
        return self.predicted + self.server_cost

    @property
    def ratio(self) -> float | None:
        """Measured against the rule plus the server's cost: near 1 on any machine."""
        return self.measured / self.expected if self.expected > 0 else None

    @property
    def raw_ratio(self) -> float | None:
        """Measured against the rule's figure alone (the course's quality bars, quiet machine)."""
        return self.measured / self.predicted if self.predicted > 0 else None

    def latency(self, p: float) -> float:
        """Nearest-rank percentile of the client-side latency (sent -> reply complete)."""
        values = sorted(lane.ended - lane.sent for lane in self.lanes)
        return values[max(0, math.ceil(p / 100 * len(values)) - 1)]

    @property
    def peak_queries(self) -> int:
        """The most queries that ran in the database at the same time."""
        return _peak((lane.acquired, lane.done) for lane in self.ok)

    @property
    def threads_used(self) -> int:
        return len({lane.thread for lane in self.ok})

    @property
    def bar(self):
        return self.mode.bar(self.settings)

    @property
    def bar_met(self) -> bool | None:
        if self.bar is None:
            return None
        return not self.errors and self.bar.met(self.ratio)

    @property
    def verdict(self) -> str | None:
        """ "met", "busy" (other work on the machine, not judged), "missed", or None (no bar)."""
        if self.bar is None:
            return None
        if self.bar_met:
            return "met"
        if not self.errors and self.machine is not None and self.machine.busy:
            return "busy"
        return "missed"

    def dominant_delay(self) -> str:
        """Where the last request's time went beyond what the rule expects of it."""
        last = max(self.ok, key=lambda lane: lane.ended, default=None)
        if last is None:
            return "worker"
        waves = math.ceil(self.settings.clients / self.mode.capacity(self.settings))
        spans = {phase: b - a for phase, a, b in last.spans()}
        queued = spans.get("worker", 0) + spans.get("connection", 0) - (waves - 1) * self.settings.latency
        excess = {
            "worker" if spans.get("worker", 0) >= spans.get("connection", 0) else "connection": queued,
            "query": spans.get("query", 0) - self.settings.latency,
            "reply": spans.get("reply", 0),
        }
        return max(excess, key=lambda phase: excess[phase])

    def summary(self) -> dict:
        bar = self.bar
        return {
            "mode": self.mode.name,
            "rule": self.mode.rule,
            "how": self.mode.how(self.settings),
            "clients": self.settings.clients,
            "latency": self.settings.latency,
            "measured": round(self.measured, 4),
            "predicted": round(self.predicted, 4),
            "formula": self.mode.formula(self.settings),
            "server_cost": round(self.server_cost, 4),
            "expected": round(self.expected, 4),
            "ratio": None if self.ratio is None else round(self.ratio, 3),
            "raw_ratio": None if self.raw_ratio is None else round(self.raw_ratio, 3),
            "p50": round(self.latency(50), 4),
            "p95": round(self.latency(95), 4),
            "peak_queries": self.peak_queries,
            "capacity": self.mode.capacity(self.settings),
            "threads_used": self.threads_used,
            "errors": len(self.errors),
            "bar": None if bar is None else str(bar),
            "bar_met": self.bar_met,
            "verdict": self.verdict,
            "load": None if self.machine is None else self.machine.load,
            "other_cpu_share": None if self.machine is None else self.machine.others,
        }

    def to_json(self) -> dict:
        return {**self.summary(), "lanes": [asdict(lane) for lane in self.lanes]}


def _peak(intervals) -> int:
    """The most intervals open at once (an interval ending at t closes before one starting at t)."""
    events = []
    for start, end in intervals:
        if start is not None and end is not None:
            events += [(start, 1), (end, -1)]
    current = peak = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        current += step
        peak = max(peak, current)
    return peak


def from_json(data: dict) -> list[ModeResult]:
    """The results of a run written with --json, rebuilt (the README pictures are drawn from them)."""
    from kata_tools.lab.modes import MODES

    s = data["settings"]
    settings = Settings(s["clients"], s["latency"], s.get("pool"), s["threads"])
    out = []
    for m in data["modes"]:
        machine = Machine(data.get("cpus") or 1, m.get("load"), m.get("other_cpu_share"))
        lanes = [Lane(**lane) for lane in m["lanes"]]
        out.append(ModeResult(MODES[m["mode"]], settings, lanes, m.get("server_cost", 0.0), machine))
    return out
