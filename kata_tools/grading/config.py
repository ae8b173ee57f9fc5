"""grading.toml: points per kata, the scoring mode and each kata's time limit."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kata_tools import catalog
from kata_tools.catalog import tomllib

CONFIG_FILE = "grading.toml"
SCORING_MODES = ("all-or-nothing", "proportional")
DEFAULT_POINTS = 10.0
DEFAULT_TIME_LIMIT = 300.0  # seconds per kata process; a database kata takes 5-20 s on a busy machine


class GradingError(Exception):
    """Grading cannot start (bad config, no manifest, no katas); one line says why."""


@dataclass
class Config:
    scoring: str = "all-or-nothing"
    default_points: float = DEFAULT_POINTS
    points: dict[str, float] = field(default_factory=dict)
    time_limit: float = DEFAULT_TIME_LIMIT
    time_limits: dict[str, float] = field(default_factory=dict)
    root: Path | None = None

    def points_of(self, kata: str) -> float:
        """grading.toml's [points] override, else the kata's own `points` in its kata.toml."""
        if kata in self.points:
            return float(self.points[kata])
        decl = Path(self.root or catalog.ROOT) / "katas" / kata / "kata.toml"
        return catalog._declaration(decl).points if decl.is_file() else self.default_points

    def time_limit_of(self, kata: str) -> float:
        return float(self.time_limits.get(kata, self.time_limit))


def _numbers(table, name: str) -> dict[str, float]:
    if not isinstance(table, dict):
        raise GradingError(f"{CONFIG_FILE}: [{name}] must be a table of numbers")
    good = {k: v for k, v in table.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if len(good) != len(table) or any(v < 0 for v in good.values()):
        raise GradingError(f"{CONFIG_FILE}: [{name}] values must be numbers >= 0")
    return {k: float(v) for k, v in good.items()}


def load_config(root: Path) -> Config:
    path = Path(root) / CONFIG_FILE
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return Config(root=Path(root))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise GradingError(f"{CONFIG_FILE} is not valid TOML: {e}") from None
    grading = data.get("grading", {})
    scoring = grading.get("scoring", "all-or-nothing")
    if scoring not in SCORING_MODES:
        raise GradingError(
            f"{CONFIG_FILE}: scoring must be one of {', '.join(SCORING_MODES)}, not {scoring!r}"
        )
    scalars = _numbers(
        {
            "default_points": grading.get("default_points", DEFAULT_POINTS),
            "time_limit": grading.get("time_limit", DEFAULT_TIME_LIMIT),
        },
        "grading",
    )
    if scalars["time_limit"] <= 0:
        raise GradingError(f"{CONFIG_FILE}: time_limit must be > 0 seconds")
    return Config(
        scoring=scoring,
        default_points=scalars["default_points"],
        points=_numbers(data.get("points", {}), "points"),
        time_limit=scalars["time_limit"],
        time_limits=_numbers(data.get("time_limits", {}), "time_limits"),
        root=Path(root),
    )
