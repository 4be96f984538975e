"""Sluice's ingest stage against `bsdtar -xOf` (libarchive's own tool, extracting every member
to stdout) on the same archives of the benchmark corpus, in one run, release build.

Usage: ingest_bench.py SLUICE_BINARY CORPUS_DIR [--repeats N]

Throughput is MB/s of decompressed text (the corpus size), the median of N runs. Sluice does
more than bsdtar here — UTF-8 validation, the report, and writing an LZ4-compressed docs part
with its SHA-256 — so the ratio is a ceiling check, not a like-for-like race. Then the corpus as
JSON Lines, plain (beside Python's json.loads per line) and gzip-compressed (beside `gzip -dc`
and Python's gzip.open + json.loads).
"""
import argparse
import json
import pathlib
import shutil
import statistics
import subprocess
import tempfile
import time

import ratios


def median_seconds(function, repeats) -> float:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def timed(command, repeats, **kwargs):
    return median_seconds(lambda: subprocess.run(command, check=True, **kwargs), repeats)


def sluice_ingest(sluice: str, path: pathlib.Path, repeats: int) -> tuple[float, dict]:
    """`sluice run` of ingest alone on `path` (1 worker, a fresh output each time): median
    seconds, and the report's ingest section."""
    with tempfile.TemporaryDirectory() as scratch:
        config = pathlib.Path(scratch) / "ingest.json"
        config.write_text(json.dumps({"inputs": [str(path)], "workers": 1}))
        out = pathlib.Path(scratch) / "out"

        def run_once():
            shutil.rmtree(out, ignore_errors=True)
            subprocess.run([sluice, "run", str(config), "--out", str(out)], check=True, capture_output=True)

        seconds = median_seconds(run_once, repeats)
        return seconds, json.loads((out / "report.json").read_text())["ingest"]


def assert_accounted(report: dict, documents: int, total_bytes: int) -> None:
    """Every member is a document or a counted skip (the corpus holds one GIF saved as text,
    which ingest skips as binary), and every byte is text kept, a stripped UTF-8 byte order
    mark, or a skipped member's."""
    skipped = report["skipped"].values()
    assert report["documents"] + sum(s["count"] for s in skipped) == documents, report
    assert report["document_bytes"] + 3 * report["byte_order_marks_stripped"] + sum(s["bytes"] for s in skipped) == total_bytes, report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sluice")
    parser.add_argument("corpus")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    corpus = pathlib.Path(args.corpus).resolve()
    total = sum(p.stat().st_size for p in corpus.iterdir() if p.is_file() and not p.name.startswith("."))
    megabytes = total / 1e6
    archives_dir = corpus.parent / "archives"
    archives_dir.mkdir(exist_ok=True)
    names = sorted(p.name for p in corpus.iterdir() if p.is_file() and not p.name.startswith("."))
    (archives_dir / "list.txt").write_text("\n".join(names) + "\n")
    makers = {
        "corpus.tar": ["tar", "-cf", "{out}", "-C", str(corpus), "-T", "{list}"],
        "corpus.tar.gz": ["sh", "-c", "tar -cf - -C '%s' -T '{list}' | gzip -6 > '{out}'" % corpus],
        "corpus.tar.zst": ["sh", "-c", "tar -cf - -C '%s' -T '{list}' | zstd -q -3 -o '{out}'" % corpus],
        "corpus.zip": ["sh", "-c", "cd '%s' && zip -q -X '{out}' -@ < '{list}'" % corpus],
    }
    print(f"corpus: {len(names)} documents, {megabytes:.1f} MB; median of {args.repeats} runs; MB/s of decompressed text")
    print(f"{'archive':<16} {'bsdtar -xOf':>12} {'sluice ingest':>14} {'ratio':>7}")
    for name, template in makers.items():
        archive = archives_dir / name
        if not archive.exists():
            command = [part.replace("{out}", str(archive)).replace("{list}", str(archives_dir / "list.txt")) for part in template]
            subprocess.run(command, check=True)
        bsdtar = timed(["bsdtar", "-xOf", str(archive)], args.repeats, stdout=subprocess.DEVNULL)
        sluice, report = sluice_ingest(args.sluice, archive, args.repeats)
        assert_accounted(report, len(names), total)
        print(f"{name:<16} {megabytes / bsdtar:>10.1f}   {megabytes / sluice:>12.1f}   {bsdtar / sluice:>6.2f}")
        ratios.record(f"ingest.{name}.vs_bsdtar", bsdtar / sluice, f"sluice ingest / bsdtar -xOf, {name}")

    # JSONL: one record per document; the reference is what a Python script would do.
    jsonl = archives_dir / "corpus.jsonl"
    if not jsonl.exists():
        with open(jsonl, "w", encoding="utf-8") as out:
            for name in names:
                out.write(json.dumps({"text": (corpus / name).read_bytes().decode("utf-8"), "source": name}) + "\n")
    jsonl_mb = jsonl.stat().st_size / 1e6

    def python_jsonl():
        count = 0
        with open(jsonl, "rb") as handle:
            for line in handle:
                count += len(json.loads(line)["text"].encode("utf-8"))
        return count

    python_seconds = median_seconds(python_jsonl, args.repeats)
    seconds, report = sluice_ingest(args.sluice, jsonl, args.repeats)
    assert report["documents"] == len(names), report
    python_rate = jsonl_mb / python_seconds
    sluice_rate = jsonl_mb / seconds
    ratios.record("ingest.corpus.jsonl.vs_python", sluice_rate / python_rate, "sluice ingest / Python json.loads per line")
    print(f"{'corpus.jsonl':<16} {'':>12} {sluice_rate:>14.1f}   (Python json.loads per line: {python_rate:.1f} MB/s of JSONL, {sluice_rate / python_rate:.2f}x)")

    # The same JSONL gzip-compressed: Sluice inflates .gz files with zlib itself; the
    # references are `gzip -dc` alone and Python's gzip.open + json.loads per line.
    jsonl_gz = archives_dir / "corpus.jsonl.gz"
    if not jsonl_gz.exists():
        subprocess.run(["sh", "-c", f"gzip -6 -c '{jsonl}' > '{jsonl_gz}'"], check=True)
    zcat = timed(["gzip", "-dc", str(jsonl_gz)], args.repeats, stdout=subprocess.DEVNULL)

    def python_jsonl_gz():
        import gzip
        with gzip.open(jsonl_gz, "rb") as handle:
            return sum(len(json.loads(line)["text"].encode("utf-8")) for line in handle)

    python_gz = median_seconds(python_jsonl_gz, args.repeats)
    seconds, report = sluice_ingest(args.sluice, jsonl_gz, args.repeats)
    assert report["documents"] == len(names) and not report["skipped"], report
    ratios.record("ingest.corpus.jsonl.gz.vs_gzip", zcat / seconds, "sluice ingest / gzip -dc alone")
    print(f"{'corpus.jsonl.gz':<16} {jsonl_mb / zcat:>10.1f}   {jsonl_mb / seconds:>12.1f}   {zcat / seconds:>6.2f}"
          f"   (gzip -dc in the first column; Python gzip.open + json.loads: {jsonl_mb / python_gz:.1f} MB/s,"
          f" {python_gz / seconds:.2f}x)")


if __name__ == "__main__":
    main()
