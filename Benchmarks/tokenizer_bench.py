"""Sluice's GPT-2 tokenizer against tiktoken and HF tokenizers on the same corpus, same run.

Usage: tokenizer_bench.py VOCAB CORPUS_DIR SLUICE_BENCH_BINARY [--repeats N]

Every tool encodes every document of CORPUS_DIR (files in path order) without special tokens
(encode_ordinary). Throughput is MB/s of UTF-8 input, the median of N timed runs after the
corpus is loaded into memory. Sluice's ids are compared with tiktoken's on the whole corpus;
the run fails if a single id differs.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import tiktoken
from tiktoken.load import load_tiktoken_bpe

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""


def load_corpus(directory: str) -> list[str]:
    paths = sorted(p for p in pathlib.Path(directory).rglob("*") if p.is_file() and not p.name.startswith("."))
    # Bytes, then decode: read_text() would translate "\r" into "\n" (universal newlines).
    return [p.read_bytes().decode("utf-8") for p in paths]


def timed(function, repeats: int) -> tuple[float, object]:
    seconds = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def tiktoken_encoding(vocab: str) -> tiktoken.Encoding:
    return tiktoken.Encoding(
        name="gpt2-from-file",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=load_tiktoken_bpe(vocab),
        special_tokens={"<|endoftext|>": 50256},
    )


def hf_worker(vocab: str, corpus: str, repeats: int) -> None:
    """Runs in a child process so RAYON_NUM_THREADS takes effect; prints seconds."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    ranks = load_tiktoken_bpe(vocab)
    byte_to_unicode = gpt2_bytes_to_unicode()

    def spell(token: bytes) -> str:
        return "".join(byte_to_unicode[b] for b in token)

    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) > 1:
            left, right = split_by_lower_ranks(ranks, token, rank)
            merges.append((spell(left), spell(right)))
    tokenizer = Tokenizer(models.BPE({spell(t): r for t, r in ranks.items()}, merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    documents = load_corpus(corpus)
    # One timed run: HF takes 40-100 s a pass on 100 MB here, and its spread is small beside that.
    seconds, encodings = timed(lambda: tokenizer.encode_batch(documents, add_special_tokens=False), 1)
    ids = np.concatenate([np.asarray(e.ids, dtype=np.uint32) for e in encodings])
    ids.astype("<u4").tofile(os.environ["SLUICE_BENCH_IDS_OUT"])
    print(json.dumps({"seconds": seconds}))


def gigatoken_worker(vocab: str, corpus: str, threads: int, repeats: int) -> None:
    """Runs in a child process, so each thread count starts with gigatoken's caches empty.

    gigatoken keeps a pre-token cache across calls: its first pass over a corpus is the fair
    comparison with a pipeline that sees each text once, later passes are "fully warm". Its
    lazy set-up is paid on a short text before timing. Prints first and median seconds.
    """
    import awkward
    import gigatoken

    tokenizer = gigatoken.Tokenizer.from_tiktoken(vocab, pretokenizer="gpt2", special_tokens={})
    tokenizer.encode_batch(["warm up the thread pool and tables"], parallel=threads > 1)
    documents = load_corpus(corpus)
    seconds = []
    encodings = None
    for _ in range(repeats):
        start = time.perf_counter()
        encodings = tokenizer.encode_batch(documents, parallel=threads > 1)
        seconds.append(time.perf_counter() - start)
    ids = np.asarray(awkward.flatten(encodings), dtype=np.uint32)
    ids.astype("<u4").tofile(os.environ["SLUICE_BENCH_IDS_OUT"])
    print(json.dumps({"first_seconds": seconds[0], "median_seconds": statistics.median(seconds)}))


def gpt2_bytes_to_unicode() -> dict[int, str]:
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    mapped = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            mapped.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(printable, mapped)}


def split_by_lower_ranks(ranks: dict[bytes, int], token: bytes, max_rank: int) -> tuple[bytes, bytes]:
    """BPE of `token` using only ranks below its own: the merge that creates it."""
    parts = [bytes([b]) for b in token]
    while True:
        best = None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < max_rank and (best is None or rank < best[0]):
                best = (rank, i)
        if best is None:
            break
        i = best[1]
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    assert len(parts) == 2, (token, parts)
    return parts[0], parts[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("vocab")
    parser.add_argument("corpus")
    parser.add_argument("sluice_binary")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hf-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--gigatoken-worker", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hf_worker:
        hf_worker(args.vocab, args.corpus, args.repeats)
        return
    if args.gigatoken_worker:
        gigatoken_worker(args.vocab, args.corpus, args.gigatoken_worker, args.repeats)
        return

    documents = load_corpus(args.corpus)
    megabytes = sum(len(d.encode("utf-8")) for d in documents) / 1e6
    encoding = tiktoken_encoding(args.vocab)
    print(f"corpus: {len(documents)} documents, {megabytes:.1f} MB; median of {args.repeats} runs each")

    rows = []
    reference = None
    for threads in (1, 2):
        seconds, batches = timed(lambda: encoding.encode_ordinary_batch(documents, num_threads=threads), args.repeats)
        if reference is None:
            reference = np.concatenate([np.asarray(b, dtype=np.uint32) for b in batches])
        rows.append((f"tiktoken {tiktoken.__version__}", threads, seconds))

    mismatched = False
    with tempfile.TemporaryDirectory() as scratch:
        import tokenizers

        for threads in (1, 2):
            ids_path = os.path.join(scratch, f"hf-ids-{threads}.bin")
            env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true", SLUICE_BENCH_IDS_OUT=ids_path)
            out = subprocess.run(
                [sys.executable, __file__, args.vocab, args.corpus, args.sluice_binary, "--repeats", str(args.repeats), "--hf-worker"],
                env=env, check=True, capture_output=True, text=True,
            )
            rows.append((f"HF tokenizers {tokenizers.__version__}", threads, json.loads(out.stdout)["seconds"]))
            hf_ids = np.fromfile(ids_path, dtype="<u4")
            same = hf_ids.shape == reference.shape and np.array_equal(hf_ids, reference)
            print(f"HF tokenizers ({threads} thread(s)): ids {'identical to' if same else 'DIFFER from'} tiktoken's (informative)")

        import importlib.metadata

        giga_version = importlib.metadata.version("gigatoken")
        for threads in (1, 2):
            ids_path = os.path.join(scratch, f"giga-ids-{threads}.bin")
            env = dict(os.environ, RAYON_NUM_THREADS=str(threads), SLUICE_BENCH_IDS_OUT=ids_path)
            out = subprocess.run(
                [sys.executable, __file__, args.vocab, args.corpus, args.sluice_binary, "--repeats", str(args.repeats),
                 "--gigatoken-worker", str(threads)],
                env=env, check=True, capture_output=True, text=True,
            )
            timing = json.loads(out.stdout)
            rows.append((f"gigatoken {giga_version} first", threads, timing["first_seconds"]))
            rows.append((f"gigatoken {giga_version} warm", threads, timing["median_seconds"]))
            giga_ids = np.fromfile(ids_path, dtype="<u4")
            same = giga_ids.shape == reference.shape and np.array_equal(giga_ids, reference)
            print(f"gigatoken ({threads} thread(s)): ids {'identical to' if same else 'DIFFER from'} tiktoken's (informative: its Unicode tables are 17's)")

        for threads in (1, 2):
            ids_path = os.path.join(scratch, f"ids-{threads}.bin")
            out = subprocess.run(
                [args.sluice_binary, args.vocab, args.corpus, str(threads), str(args.repeats), ids_path],
                check=True, capture_output=True, text=True,
            )
            result = json.loads(out.stdout)
            rows.append(("sluice", threads, result["median_seconds"]))
            ids = np.fromfile(ids_path, dtype="<u4")
            if ids.shape != reference.shape or not np.array_equal(ids, reference):
                n = min(len(ids), len(reference))
                first = int(np.argmax(ids[:n] != reference[:n])) if n and (ids[:n] != reference[:n]).any() else n
                print(f"MISMATCH ({threads} threads): {len(ids)} ids vs tiktoken's {len(reference)}; first difference at id {first}")
                mismatched = True
            else:
                print(f"ids identical to tiktoken's ({threads} thread{'s' if threads > 1 else ''}): {len(ids)} ids")

    print()
    print(f"{'tool':<30} {'threads':>7} {'seconds':>9} {'MB/s':>8}")
    for name, threads, seconds in rows:
        print(f"{name:<30} {threads:>7} {seconds:>9.3f} {megabytes / seconds:>8.1f}")
    tiktoken_speed = {t: megabytes / s for n, t, s in rows if n.startswith("tiktoken")}
    hf_speed = {t: megabytes / s for n, t, s in rows if n.startswith("HF")}
    giga_speed = {t: megabytes / s for n, t, s in rows if n.startswith("gigatoken") and n.endswith("first")}
    print()
    for name, threads, seconds in rows:
        if name == "sluice":
            speed = megabytes / seconds
            print(
                f"sluice {threads} thread(s): {speed / tiktoken_speed[threads]:.2f}x tiktoken, "
                f"{speed / hf_speed[threads]:.2f}x HF tokenizers, {speed / giga_speed[threads]:.2f}x gigatoken (first pass)"
            )
    if mismatched:
        sys.exit(1)


if __name__ == "__main__":
    main()
