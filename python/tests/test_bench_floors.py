"""`scripts/dev bench --check`'s verdict (Benchmarks/check_floors.py): it passes when every ratio
is at or above its floor, and fails when a floor is raised above the measured ratio, when a
ratio was not measured, and on a damaged ratios file. The floors file in the repository names
only ratios that the benchmarks record."""
import json
import pathlib
import re
import subprocess
import sys

from conftest import ROOT

CHECK = ROOT / "Benchmarks/check_floors.py"


def run_check(tmp_path: pathlib.Path, floors: dict, ratios_lines: list[str]) -> subprocess.CompletedProcess:
    floors_path = tmp_path / "floors.json"
    floors_path.write_text(json.dumps({"floors": floors}))
    ratios_path = tmp_path / "ratios.jsonl"
    ratios_path.write_text("".join(line + "\n" for line in ratios_lines))
    return subprocess.run([sys.executable, str(CHECK), str(floors_path), str(ratios_path)], capture_output=True, text=True)


def record(name: str, value: float) -> str:
    return json.dumps({"name": name, "value": value, "detail": "test"})


def test_passes_at_or_above_the_floor_and_reports_an_unmet_goal(tmp_path):
    result = run_check(
        tmp_path,
        {"a.vs_b": {"floor": 1.5, "goal": 2.0}, "c.vs_d": {"floor": 0.8, "goal": None}},
        [record("a.vs_b", 1.9), record("c.vs_d", 0.8)],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok (goal not reached)" in result.stdout


def test_fails_when_a_floor_is_raised_above_the_measured_ratio(tmp_path):
    ratios = [record("a.vs_b", 1.9)]
    assert run_check(tmp_path, {"a.vs_b": {"floor": 1.9}}, ratios).returncode == 0
    raised = run_check(tmp_path, {"a.vs_b": {"floor": 1.91}}, ratios)
    assert raised.returncode == 1
    assert "BELOW FLOOR" in raised.stdout


def test_the_last_record_of_a_ratio_counts(tmp_path):
    result = run_check(tmp_path, {"a.vs_b": {"floor": 1.0}}, [record("a.vs_b", 2.0), record("a.vs_b", 0.9)])
    assert result.returncode == 1


def test_fails_on_a_ratio_not_measured_and_on_a_damaged_file(tmp_path):
    missing = run_check(tmp_path, {"a.vs_b": {"floor": 1.0}, "e.vs_f": {"floor": 1.0}}, [record("a.vs_b", 2.0)])
    assert missing.returncode == 1 and "NOT MEASURED" in missing.stdout
    damaged = run_check(tmp_path, {"a.vs_b": {"floor": 1.0}}, [record("a.vs_b", 2.0), '{"name": "x"'])
    assert damaged.returncode == 1 and "line 2" in damaged.stderr
    absent = subprocess.run(
        [sys.executable, str(CHECK), str(tmp_path / "floors.json"), str(tmp_path / "none.jsonl")], capture_output=True, text=True
    )
    assert absent.returncode == 1 and "does not exist" in absent.stderr


def test_every_floor_in_the_repository_names_a_ratio_a_benchmark_records():
    floors = json.loads((ROOT / "Benchmarks/floors.json").read_text())["floors"]
    sources = "\n".join(p.read_text() for p in (ROOT / "Benchmarks").glob("*_bench.py"))
    # The names the benchmarks can record: literal ones, and f-strings with their placeholders as wildcards.
    patterns = []
    for literal in re.findall(r'ratios\.record\(\s*(f?"[^"]+")', sources):
        text = literal[2:-1] if literal.startswith("f") else literal[1:-1]
        parts = re.split(r"\{[^}]*\}", text)
        patterns.append(re.compile("^" + ".+".join(re.escape(part) for part in parts) + "$"))
    assert patterns
    for name, entry in floors.items():
        assert any(p.match(name) for p in patterns), f"floor {name!r} matches no ratios.record call"
        assert entry["floor"] > 0 and (entry.get("goal") is None or entry["goal"] >= entry["floor"]), name
