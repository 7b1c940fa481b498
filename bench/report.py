"""Turn measured runs into the comparison: ratios, a text table, and the JSON file."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

# (result field, column title, width, format spec)
COLUMNS = (
    ("rps", "req/s", 9, ".0f"),
    ("p50_ms", "p50 ms", 8, ".3f"),
    ("p99_ms", "p99 ms", 8, ".3f"),
    ("errors", "errors", 7, "d"),
    ("peak_rss_mb", "peak RSS MB", 12, ".1f"),
)
HEADER = f"{'scenario':<12} {'target':<9} " + " ".join(title.rjust(width) for _, title, width, _ in COLUMNS)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def rounds_combine(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Return one result for a target's rounds: medians of rates and latencies, sums and peaks of the rest.

    One round is returned as it is; with several, the medians damp what another process did to one.
    """
    if len(rounds) == 1:
        return rounds[0]
    combined: dict[str, Any] = {}
    for name in ("rps", "p50_ms", "p99_ms"):
        combined[name] = _median([result[name] for result in rounds if result.get(name) is not None])
    for name in ("requests", "errors", "duration_s"):
        combined[name] = sum(result[name] for result in rounds)
    for name in ("peak_rss_mb", "load_average_1m"):
        combined[name] = max(result.get(name) or 0 for result in rounds)
    combined["rounds"] = rounds
    return combined


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def _difference(left: float | None, right: float | None) -> float | None:
    return None if left is None or right is None else round(left - right, 3)


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Return gateway/floor and gateway/upstream (req/s and p50), and the p50 each adds to the upstream's."""
    upstream, floor, gateway = (results.get(target, {}) for target in ("upstream", "floor", "gateway"))
    compared = {}
    for name, base in (("gateway/floor", floor), ("gateway/upstream", upstream)):
        compared[name] = {
            "rps": _ratio(gateway.get("rps"), base.get("rps")),
            "p50": _ratio(gateway.get("p50_ms"), base.get("p50_ms")),
        }
    compared["added_p50_ms"] = {
        target: _difference(results.get(target, {}).get("p50_ms"), upstream.get("p50_ms"))
        for target in ("floor", "gateway")
    }
    return compared


def _cell(value: Any, width: int, spec: str) -> str:
    return ("-" if value is None else format(value, spec)).rjust(width)


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _added(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f} ms"


def table(report: dict[str, Any]) -> str:
    """Return the report as a text table: scenario x target, then the ratios under each scenario."""
    lines = [HEADER, "-" * len(HEADER)]
    for scenario in report["scenarios"]:
        for index, (target, result) in enumerate(scenario["results"].items()):
            cells = " ".join(_cell(result.get(name), width, spec) for name, _, width, spec in COLUMNS)
            lines.append(f"{scenario['name'] if index == 0 else '':<12} {target:<9} {cells}")
        compared = scenario["ratios"]
        lines.append(
            f"{'':<12} req/s gateway/floor {_times(compared['gateway/floor']['rps'])}, "
            f"gateway/upstream {_times(compared['gateway/upstream']['rps'])}; "
            f"p50 added to upstream: floor {_added(compared['added_p50_ms']['floor'])}, "
            f"gateway {_added(compared['added_p50_ms']['gateway'])}"
        )
    return "\n".join(lines)


def report_write(report: dict[str, Any], path: Path) -> None:
    """Write the report as JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
