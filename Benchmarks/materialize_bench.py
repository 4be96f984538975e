"""Materialize + compress: Sluice against NumPy + python-lz4 doing the same work on the same ids
and tables, and against `lz4 -1` alone on the same bytes (the ceiling), in one run, written to
a RAM-backed folder (/dev/shm) so the disk does not decide.

Usage: materialize_bench.py MATERIALIZE_BENCHMARK_BINARY VOCAB CORPUS_DIR [--tokens N] [--dim D]

The same work for every tool: windows of 256 tokens (stride 256, batches of 8), inputs and
targets int32, embeddings = token_table[ids] + position_table[t] in float32, one safetensors
file per ~256 MB shard, compressed into an LZ4 frame, SHA-256 of the compressed bytes (what
the manifest records), written to /dev/shm. Throughput is GB/s of raw (uncompressed) tensor
bytes. Sluice's shard 0 is compared with NumPy's arrays for equality.
"""
import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import time

import lz4.frame
import numpy as np
import ratios
from safetensors.numpy import load, save


def numpy_materialize(work: str, out: str, dim: int, max_length: int = 256, batch: int = 8):
    ids = np.fromfile(os.path.join(work, "ids.i32"), dtype="<i4")
    token = np.fromfile(os.path.join(work, "token.f32"), dtype="<f4").reshape(-1, dim)
    position = np.fromfile(os.path.join(work, "position.f32"), dtype="<f4").reshape(-1, dim)
    windows = len(range(0, max(0, len(ids) - max_length), max_length))
    windows -= windows % batch
    per_shard = max(1, (256 << 20) // (batch * max_length * (8 + dim * 4))) * batch
    os.makedirs(out, exist_ok=True)
    raw = 0
    first = None
    offsets = np.arange(max_length)
    for shard, start in enumerate(range(0, windows, per_shard)):
        rows = np.arange(start, min(start + per_shard, windows)) * max_length
        index = rows[:, None] + offsets
        inputs = ids[index]
        targets = ids[index + 1]
        embeddings = token[inputs] + position[:max_length]
        blob = save({"inputs": inputs, "targets": targets, "embeddings": embeddings})
        compressed = lz4.frame.compress(blob, compression_level=0, block_size=lz4.frame.BLOCKSIZE_MAX4MB, content_checksum=True)
        hashlib.sha256(compressed).hexdigest()
        with open(os.path.join(out, f"shard-{shard:05d}.safetensors.lz4"), "wb") as handle:
            handle.write(compressed)
        raw += len(blob)
        if first is None:
            first = {"inputs": inputs, "targets": targets, "embeddings": embeddings}
    return raw, first


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("vocab")
    parser.add_argument("corpus")
    parser.add_argument("--tokens", type=int, default=2_000_000)
    parser.add_argument("--dim", type=int, default=256)
    args = parser.parse_args()
    ram = "/dev/shm/sluice-materialize-bench"
    shutil.rmtree(ram, ignore_errors=True)
    # One run first for the shard compared with NumPy's; the timed ones are the rounds below.
    out = subprocess.run([args.binary, args.vocab, args.corpus, ram, str(args.tokens), str(args.dim), "1"],
                         check=True, capture_output=True, text=True)
    results = {1: json.loads(out.stdout)}
    raw_bytes = results[1]["raw_bytes"]

    numpy_seconds = []
    for _ in range(3):
        shutil.rmtree(os.path.join(ram, "numpy"), ignore_errors=True)
        start = time.perf_counter()
        numpy_raw, first = numpy_materialize(ram, os.path.join(ram, "numpy"), args.dim)
        numpy_seconds.append(time.perf_counter() - start)
    numpy_time = statistics.median(numpy_seconds)

    sluice_first = load(lz4.frame.decompress(open(os.path.join(ram, "shards/shard-00000.safetensors.lz4"), "rb").read()))
    same = all(np.array_equal(sluice_first[k], first[k]) for k in first)

    raw_path = os.path.join(ram, "raw-shard.bin")
    with open(raw_path, "wb") as handle:
        handle.write(save(first))

    def lz4_once() -> float:
        start = time.perf_counter()
        subprocess.run(["lz4", "-1", "-f", "-q", raw_path, raw_path + ".lz4"], check=True)
        return os.path.getsize(raw_path) / (time.perf_counter() - start) / 1e9

    def sluice_once(threads: int) -> float:
        out = subprocess.run([args.binary, args.vocab, args.corpus, ram, str(args.tokens), str(args.dim), str(threads)],
                             check=True, capture_output=True, text=True)
        return raw_bytes / json.loads(out.stdout)["seconds"] / 1e9

    # The ratio to lz4 in paired rounds: lz4 -1 (median of 3) right before each Sluice run, so
    # that this VM's drift between the two does not decide it; the median of the rounds' ratios.
    rounds = []
    for _ in range(3):
        lz4_rate = statistics.median(lz4_once() for _ in range(3))
        rounds.append((lz4_rate, sluice_once(1), sluice_once(2)))
    lz4_rate = statistics.median(r[0] for r in rounds)
    vs_lz4 = {threads: statistics.median(r[threads] / r[0] for r in rounds) for threads in (1, 2)}

    gb = raw_bytes / 1e9
    print(f"materialize + compress: {args.tokens} tokens → {results[1]['windows']} windows × 256 × {args.dim}, "
          f"{gb:.2f} GB raw, {results[1]['shards']} shards, to /dev/shm; 3 paired rounds")
    print(f"shard 0 identical to NumPy's arrays: {same}")
    print(f"{'tool':<36} {'GB/s':>6}")
    print(f"{'lz4 -1 alone on one raw shard':<36} {lz4_rate:>6.2f}")
    numpy_rate = numpy_raw / 1e9 / numpy_time
    print(f"{'NumPy + python-lz4 + hashlib (1 thread)':<36} {numpy_rate:>6.2f}")
    for threads in (1, 2):
        rate = statistics.median(r[threads] for r in rounds)
        print(f"{'sluice, ' + str(threads) + ' thread(s)':<36} {rate:>6.2f}   ({rate / numpy_rate:.2f}x NumPy, "
              f"{vs_lz4[threads]:.2f}x lz4 -1: median of the rounds' ratios "
              f"{', '.join(f'{r[threads] / r[0]:.2f}' for r in rounds)})")
        ratios.record(f"materialize.vs_lz4.{threads}thread", vs_lz4[threads], f"sluice materialize + compress, {threads} thread(s) / lz4 -1 alone, paired rounds")
        ratios.record(f"materialize.vs_numpy.{threads}thread", rate / numpy_rate, f"sluice, {threads} thread(s) / NumPy + python-lz4 + hashlib")
    shutil.rmtree(ram, ignore_errors=True)
    if not same:
        raise SystemExit("sluice's shard differs from NumPy's arrays")


if __name__ == "__main__":
    main()
