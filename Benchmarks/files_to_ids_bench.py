"""The whole job of a tokenizing data tool: a folder of text files → GPT-2 ids on disk.

Usage: files_to_ids_bench.py SLUICE_BINARY VOCAB_DIR GPT2_TIKTOKEN CORPUS_DIR [--repeats N]

Sluice: `sluice run` of ingest + tokenize (<|endoftext|> between documents, uint16 ids in LZ4
token parts, the docs parts, checksums and the report). The reference is the script every
nanoGPT-style prepare step is: read each file, encode the batch with gigatoken (the fastest
exact tokenizer on PyPI; 1 or 2 Rayon threads, each in a fresh process so its cache starts
empty), append 50256 after each document and write one uint16 `.bin`. Both see the files in
path order and skip what Sluice's report skips as binary, so their id streams are compared for
equality (informative: gigatoken's Unicode tables are 17's). Wall time, median of N runs.
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import lz4.frame
import numpy as np
import ratios


def reference_worker(vocab: str, corpus: str, out: str, threads: int, skip: list[str]) -> None:
    """Runs in a child process: the read → encode → write script, timed from its first read."""
    import gigatoken

    tokenizer = gigatoken.Tokenizer.from_tiktoken(vocab, pretokenizer="gpt2", special_tokens={})
    tokenizer.encode_batch(["warm up the thread pool and tables"], parallel=threads > 1)
    start = time.perf_counter()
    skipped = set(skip)
    paths = sorted((p for p in pathlib.Path(corpus).rglob("*") if p.is_file() and not p.name.startswith(".")
                    and str(p) not in skipped), key=lambda p: os.fsencode(str(p)))
    texts = []
    for path in paths:
        data = path.read_bytes()
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        texts.append(data.decode("utf-8", errors="replace"))
    encoded = tokenizer.encode_batch(texts, parallel=threads > 1)
    import awkward

    lengths = np.asarray(awkward.num(encoded), dtype=np.int64)
    flat = np.asarray(awkward.flatten(encoded), dtype=np.uint16)
    stream = np.empty(len(flat) + len(lengths), dtype=np.uint16)
    ends = np.cumsum(lengths)
    positions = np.arange(len(flat)) + np.repeat(np.arange(len(lengths)), lengths)
    stream[positions] = flat
    stream[ends + np.arange(len(lengths))] = 50256
    stream.tofile(out)
    print(json.dumps({"seconds": time.perf_counter() - start}))


def sluice_ids(out: pathlib.Path) -> np.ndarray:
    parts = sorted((out / "tokens").glob("part-*.lz4"))
    parts = [p for p in parts if not p.name.endswith(".doc-tokens.lz4")]
    return np.concatenate([np.frombuffer(lz4.frame.decompress(p.read_bytes()), dtype="<u2") for p in parts])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sluice")
    parser.add_argument("vocab_dir")
    parser.add_argument("tiktoken_file")
    parser.add_argument("corpus")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", nargs=3, metavar=("OUT", "THREADS", "SKIP_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        out, threads, skip = args.worker
        reference_worker(args.tiktoken_file, args.corpus, out, int(threads), json.loads(skip))
        return

    corpus = str(pathlib.Path(args.corpus).resolve())
    megabytes = sum(p.stat().st_size for p in pathlib.Path(corpus).rglob("*") if p.is_file() and not p.name.startswith(".")) / 1e6
    with tempfile.TemporaryDirectory(dir="/dev/shm") as scratch:
        scratch = pathlib.Path(scratch)
        config = scratch / "ids.json"
        vocab = pathlib.Path(args.vocab_dir).resolve()
        config.write_text(json.dumps({
            "inputs": [corpus],
            "tokenizer": {"vocab": str(vocab / "encoder.json"), "merges": str(vocab / "vocab.bpe"),
                          "special_tokens": {"<|endoftext|>": 50256}, "document_separator": "<|endoftext|>"},
        }))
        out = scratch / "sluice"
        seconds = {1: [], 2: []}
        reference = {1: [], 2: []}
        skip = None
        for _ in range(args.repeats):
            for workers in (1, 2):
                shutil.rmtree(out, ignore_errors=True)
                start = time.perf_counter()
                subprocess.run([args.sluice, "run", str(config), "--out", str(out), "--workers", str(workers)],
                               check=True, capture_output=True)
                seconds[workers].append(time.perf_counter() - start)
                if skip is None:
                    report = json.loads((out / "report.json").read_text())["ingest"]
                    assert report["problems_not_listed"] == 0
                    skip = [p["file"] for p in report["problems"] if p["reason"] == "binary"]
                bin_path = scratch / f"reference-{workers}.bin"
                result = subprocess.run(
                    [sys.executable, __file__, args.sluice, args.vocab_dir, args.tiktoken_file, corpus,
                     "--worker", str(bin_path), str(workers), json.dumps(skip)],
                    env=dict(os.environ, RAYON_NUM_THREADS=str(workers)), check=True, capture_output=True, text=True)
                reference[workers].append(json.loads(result.stdout)["seconds"])
        ids = sluice_ids(out)
        same = {w: np.array_equal(np.fromfile(scratch / f"reference-{w}.bin", dtype="<u2"), ids) for w in (1, 2)}
    print(f"files → ids on disk: {megabytes:.1f} MB of text ({args.corpus}), {len(ids):,} ids; median of {args.repeats}")
    print(f"{'job':<62} {'wall s':>7} {'MB/s':>7}")
    for workers in (1, 2):
        script = statistics.median(reference[workers])
        ours = statistics.median(seconds[workers])
        print(f"{f'read + gigatoken + write .bin, {workers} thread(s)':<62} {script:>7.2f} {megabytes / script:>7.1f}")
        print(f"{f'sluice run (ingest + tokenize), {workers} worker(s)':<62} {ours:>7.2f} {megabytes / ours:>7.1f}"
              f"   ({script / ours:.2f}x the script; ids {'identical' if same[workers] else 'DIFFER (gigatoken: Unicode 17)'})")
        ratios.record(f"files_to_ids.vs_gigatoken_script.{workers}worker", script / ours,
                      f"read + gigatoken + write / sluice run ingest + tokenize, {workers} worker(s)")


if __name__ == "__main__":
    main()
