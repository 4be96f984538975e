"""Submit-to-done on a Slurm cluster beside a local run of the same config, in one run.

Usage: slurm_bench.py SLUICE_BINARY CONFIG [--runs N] [--out DIR]

For CONFIG (e.g. pipelines/mixed-corpus.json: text files, JSON Lines and a tar.gz through
every stage, bfloat16 embeddings), alternating runs of
  - local:  sluice run CONFIG --executor local --workers 2
  - slurm:  sluice run CONFIG --executor slurm (squeue polled every 1 s, the default, and 200 ms)
each into a fresh output directory, then once more into the finished directory (every task
reused: what the per-job overhead alone costs). Prints min / median / max wall seconds, the
Slurm-to-local ratio, the coordinator's CPU seconds, and whether every output file except
report.json's timing is byte-identical to the local run's.

Needs a reachable cluster (SLURM_CONF); `scripts/dev bench` starts the loopback one.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def outputs(root: str) -> dict:
    files = {}
    for directory, _, names in os.walk(root):
        relative = os.path.relpath(directory, root)
        if relative == "_work" or relative.startswith("_work" + os.sep):
            continue
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                data = handle.read()
            if name == "report.json" and relative == ".":
                report = json.loads(data)
                report.pop("timing", None)
                data = json.dumps(report, sort_keys=True).encode()
            files[os.path.normpath(os.path.join(relative, name))] = data
    return files


def run(binary: str, config: str, out: str, arguments: list, fresh: bool = True) -> dict:
    if fresh:
        shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    result = subprocess.run(
        [binary, "run", config, "--out", out, "--log", "text"] + arguments, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"sluice run {' '.join(arguments)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    with open(os.path.join(out, "report.json")) as handle:
        timing = json.load(handle)["timing"]
    return {"wall": wall, "coordinator_cpu": timing["coordinator_cpu_seconds"]}


def summary(values: list) -> str:
    return f"{min(values):6.2f} / {statistics.median(values):6.2f} / {max(values):6.2f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sluice")
    parser.add_argument("config")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    binary = os.path.abspath(args.sluice)
    work = args.out or tempfile.mkdtemp(prefix="slurm-bench-", dir=os.getcwd())
    os.makedirs(work, exist_ok=True)
    with open(args.config) as handle:
        config = json.load(handle)
    base = os.path.dirname(os.path.abspath(args.config))
    config["inputs"] = [os.path.normpath(os.path.join(base, path)) for path in config["inputs"]]
    for key in ("vocab", "merges"):
        if config.get("tokenizer", {}).get(key):
            config["tokenizer"][key] = os.path.normpath(os.path.join(base, config["tokenizer"][key]))
    variants = {
        "local, 2 workers": ("local", ["--executor", "local", "--workers", "2"], None),
        "slurm, poll 1 s": ("slurm-1000", ["--executor", "slurm"], 1000),
        "slurm, poll 200 ms": ("slurm-200", ["--executor", "slurm"], 200),
    }
    configs = {}
    for name, (label, _, poll) in variants.items():
        variant = json.loads(json.dumps(config))
        if poll is not None:
            variant["executor"] = {"slurm": {"poll_ms": poll, "job_name": "bench"}}
        path = os.path.join(work, f"{label}.json")
        with open(path, "w") as handle:
            json.dump(variant, handle)
        configs[name] = path
    times = {name: [] for name in variants}
    cpu = {name: [] for name in variants}
    for _ in range(args.runs):
        for name, (label, arguments, _) in variants.items():
            result = run(binary, configs[name], os.path.join(work, label), arguments)
            times[name].append(result["wall"])
            cpu[name].append(result["coordinator_cpu"])
    reused = {}
    for name, (label, arguments, _) in variants.items():
        reused[name] = run(binary, configs[name], os.path.join(work, label), arguments, fresh=False)["wall"]
    reference = outputs(os.path.join(work, "local"))
    print(f"{args.config}: {args.runs} fresh run(s) each, alternating; wall seconds min / median / max")
    local = statistics.median(times["local, 2 workers"])
    for name, (label, _, _) in variants.items():
        same = outputs(os.path.join(work, label)) == reference
        print(
            f"  {name:20s} {summary(times[name])}   ×{statistics.median(times[name]) / local:5.2f} of local"
            f"   coordinator CPU {statistics.median(cpu[name]):.2f} s   all reused {reused[name]:5.2f} s"
            f"   output {'identical' if same else 'DIFFERENT'}"
        )
    if not args.out:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
