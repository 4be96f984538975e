"""The ratios a benchmark measures, kept for `scripts/dev bench --check` (check_floors.py).

A benchmark calls record(name, value, detail) for each Sluice-to-reference ratio it prints
(higher is better for Sluice). When SLUICE_BENCH_RATIOS names a file, each ratio is appended
to it as one JSON line; otherwise nothing is written. Ratios, never absolute times: both sides
of a ratio come from the same run on the same machine.
"""
import json
import os


def record(name: str, value: float, detail: str) -> None:
    path = os.environ.get("SLUICE_BENCH_RATIOS")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"name": name, "value": round(value, 4), "detail": detail}) + "\n")
