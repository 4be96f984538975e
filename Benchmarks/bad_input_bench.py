"""Bad input at scale, release build: zero bombs stopped early, and lines of 300 MB and 2 GiB streamed.

Usage: bad_input_bench.py SLUICE_BINARY VOCAB_DIR RANK_FILE TEXT_FILE WORK_DIR

1. Zero bombs: 20 GiB of zeros as gzip -9, zstd and xz (concatenated 1 GiB members, made once
   under WORK_DIR/bombs). `sluice run` on each, whole process timed (wall and CPU of the
   children), with `ingest.binary` "skip" (stopped as binary on the first 64 KiB) and "keep"
   (stopped by ingest.max_compression_ratio after 64 MiB). For scale, the time the format's own
   tool takes to inflate the first GiB of the same file.
2. One document of 300 MB, then one of 2 GiB, on one line (TEXT_FILE's words with its newlines
   made spaces, repeated after a counter so that repeats differ): `sluice run --workers 1` with
   GPT-2, the worker's peak RSS from report.json, and the ids against tiktoken's
   `encode_ordinary` of the line's pieces, whose boundaries are pre-tokenizer boundaries (checked),
   so that 2 GiB need not be held by Python at once.
"""
import itertools
import json
import pathlib
import shutil
import resource
import subprocess
import sys
import time

import lz4.frame
import numpy as np
import tiktoken
from tiktoken.load import load_tiktoken_bpe

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
GIB = 1 << 30


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(command, **kwargs):
    cpu = children_cpu()
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, **kwargs)
    return result, time.perf_counter() - start, children_cpu() - cpu


def make_bombs(directory: pathlib.Path) -> dict[str, pathlib.Path]:
    directory.mkdir(parents=True, exist_ok=True)
    tools = {"gzip -9": "bomb.txt.gz", "zstd -q -1": "bomb.txt.zst", "xz -0 -T1": "bomb.txt.xz"}
    made = {}
    for tool, name in tools.items():
        path = directory / name
        if not path.exists():
            one = directory / "one"
            subprocess.run(f"head -c {GIB} /dev/zero | {tool} > '{one}'", shell=True, check=True)
            with open(path.with_suffix(".tmp"), "wb") as out:
                member = one.read_bytes()
                for _ in range(20):
                    out.write(member)
            path.with_suffix(".tmp").rename(path)
            one.unlink()
        made[tool.split()[0]] = path
    return made


def bombs(sluice: str, work: pathlib.Path) -> None:
    print("zero bombs: 20 GiB of zeros each; whole `sluice run` process, median of 3")
    print(f"{'format':<6} {'file':>9} {'binary skip':>14} {'binary keep':>14}   {'tool, first GiB only':>22}")
    inflate = {"gzip": "gzip -dc", "zstd": "zstd -dc", "xz": "xz -dc"}
    for tool, path in make_bombs(work / "bombs").items():
        cells = []
        for binary in ("skip", "keep"):
            config = work / f"bomb-{tool}-{binary}.json"
            config.write_text(json.dumps({"inputs": [str(path)], "ingest": {"binary": binary}}))
            times = []
            for _ in range(3):
                result, wall, cpu = run_timed([sluice, "run", str(config), "--out", str(work / "bomb-out"), "--force"])
                report = json.loads((work / "bomb-out/report.json").read_text())["ingest"]
                reason = ",".join(sorted(report["skipped"]))
                times.append((wall, cpu, reason, result.returncode))
            wall, cpu, reason, code = sorted(times)[1]
            cells.append(f"{wall:5.2f} s {reason}")
            assert reason in ("binary", "decompression_limit"), reason
        _, reference, _ = run_timed(["sh", "-c", f"{inflate[tool]} '{path}' | head -c {GIB} > /dev/null"])
        size = path.stat().st_size / 1e6
        print(f"{tool:<6} {size:7.1f} MB {cells[0]:>22} {cells[1]:>26}   {reference:6.2f} s")


def line_pieces(text_file: str, size: int):
    """Pieces of one line of `size` bytes: TEXT_FILE's words (line breaks made spaces) after a
    numbered marker, so that repeats differ. Each piece starts with " [" and the words end in
    punctuation, so every piece boundary is a pre-tokenizer boundary: the ids of the line are
    the ids of its pieces, one after another (checked on the first pieces)."""
    words = " ".join(pathlib.Path(text_file).read_text(encoding="utf-8").split())
    total, copy = 0, 0
    while total < size:
        piece = f" [{copy}] {words}"
        total += len(piece.encode())
        copy += 1
        yield piece


def one_line(sluice: str, vocab: str, rank_file: str, text_file: str, work: pathlib.Path, size: int) -> None:
    line = work / "one-line.txt"
    with open(line, "w", encoding="utf-8") as out:
        for piece in line_pieces(text_file, size):
            out.write(piece)
    size = line.stat().st_size
    config = work / "one-line.json"
    config.write_text(json.dumps({
        "inputs": [str(line)],
        "tokenizer": {"vocab": f"{vocab}/encoder.json", "merges": f"{vocab}/vocab.bpe"},
        "workers": 1,
    }))
    out = work / "one-line-out"
    result, wall, cpu = run_timed([sluice, "run", str(config), "--out", str(out), "--force", "--workers", "1"])
    if result.returncode != 0:
        sys.exit(result.stderr.decode())
    report = json.loads((out / "report.json").read_text())
    stages = report["timing"]["stages"]
    peak = max(stage["peak_rss_bytes"] for stage in stages.values())
    ids = np.concatenate([
        np.frombuffer(lz4.frame.decompress(p.read_bytes()), dtype=np.uint16)
        for p in sorted((out / "tokens").glob("part-*.lz4")) if ".doc-tokens" not in p.name
    ])
    encoding = tiktoken.Encoding(
        name="gpt2-from-file", pat_str=GPT2_PATTERN, mergeable_ranks=load_tiktoken_bpe(rank_file), special_tokens={})
    first = list(itertools.islice(line_pieces(text_file, size), 40))
    assert encoding.encode_ordinary("".join(first)) == [i for p in first for i in encoding.encode_ordinary(p)], \
        "piece boundaries are not pre-tokenizer boundaries"
    # tiktoken's ids, piece by piece (two threads), compared with Sluice's as they come.
    start = time.perf_counter()
    position, equal, batch = 0, True, []
    pieces = line_pieces(text_file, size)
    while equal:
        batch = list(itertools.islice(pieces, 2000))
        if not batch:
            break
        expected = np.fromiter(
            (i for piece in encoding.encode_ordinary_batch(batch, num_threads=2) for i in piece), dtype=np.uint16)
        equal = np.array_equal(ids[position:position + len(expected)], expected)
        position += len(expected)
    tiktoken_seconds = time.perf_counter() - start
    # The run ends each document with the configured separator (GPT-2's <|endoftext|>).
    separator = json.loads((out / "tokens/part-00000.json").read_text()).get("separator_id")
    equal = equal and len(ids) == position + (separator is not None) and (separator is None or ids[-1] == separator)
    print(f"one line of {size / 1e6:.0f} MB ({len(ids)} tokens with the separator): sluice run --workers 1 {wall:.1f} s wall, "
          f"peak worker RSS {peak / 2**20:.0f} MiB (limit 256 MiB: {'ok' if peak <= 256 << 20 else 'OVER'}); "
          f"tiktoken encode_ordinary_batch over its pieces {tiktoken_seconds:.1f} s; ids equal to tiktoken's: {equal}")
    if not equal:
        sys.exit(f"ids differ: {len(ids)} ids; the difference is within the tokens from {position - len(expected)}")
    line.unlink()
    shutil.rmtree(out)


def main() -> None:
    sluice, vocab, rank_file, text_file, work = sys.argv[1:6]
    vocab = str(pathlib.Path(vocab).resolve())
    work_dir = pathlib.Path(work).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    bombs(sluice, work_dir)
    for size in (300_000_000, 2 << 30):
        one_line(sluice, vocab, rank_file, text_file, work_dir, size)


if __name__ == "__main__":
    main()
