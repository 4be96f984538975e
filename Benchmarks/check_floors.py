"""Compares the ratios one benchmark run measured (ratios.py's JSON lines) with the floors kept
in the repository (Benchmarks/floors.json), for `scripts/dev bench --check`.

Usage: check_floors.py FLOORS_JSON RATIOS_JSONL

Prints every floored ratio beside its floor and, where the project has one, its goal. Exits 1
when a ratio is below its floor or was not measured at all (a benchmark that stopped early must
not pass), 0 otherwise. A ratio recorded twice counts by its last value. A goal is reported,
never enforced: a floor guards what was reached, a goal says what is still to reach.
"""
import json
import sys


def check(floors: dict, measured: dict) -> tuple[list[str], bool]:
    lines, ok = [], True
    lines.append(f"{'ratio':<40} {'measured':>9} {'floor':>7} {'goal':>7}  verdict")
    for name, entry in floors.items():
        floor, goal = entry["floor"], entry.get("goal")
        value = measured.get(name)
        if value is None:
            verdict, ok = "NOT MEASURED", False
        elif value < floor:
            verdict, ok = "BELOW FLOOR", False
        else:
            verdict = "ok" if goal is None or value >= goal else "ok (goal not reached)"
        shown = "—" if value is None else f"{value:.2f}x"
        goal_text = "" if goal is None else f"{goal:.2f}x"
        lines.append(f"{name:<40} {shown:>9} {floor:>6.2f}x {goal_text:>7}  {verdict}")
    return lines, ok


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: check_floors.py FLOORS_JSON RATIOS_JSONL")
    with open(sys.argv[1], encoding="utf-8") as handle:
        floors = json.load(handle)["floors"]
    measured = {}
    try:
        with open(sys.argv[2], encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        record = json.loads(line)
                        measured[record["name"]] = float(record["value"])
                    except (ValueError, KeyError, TypeError) as error:
                        sys.exit(f"check_floors: {sys.argv[2]} line {number}: not a ratio record ({error})")
    except FileNotFoundError:
        sys.exit(f"check_floors: {sys.argv[2]} does not exist: no benchmark recorded a ratio")
    lines, ok = check(floors, measured)
    print("\n".join(lines))
    if not ok:
        print("check_floors: a ratio is below its floor or was not measured (floors: Benchmarks/floors.json)")
        sys.exit(1)


if __name__ == "__main__":
    main()
