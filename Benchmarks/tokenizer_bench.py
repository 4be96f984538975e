"""Sluice's GPT-2 tokenizer against tiktoken and HF tokenizers on the same corpus, same run.

Usage: tokenizer_bench.py VOCAB CORPUS_DIR SLUICE_BENCH_BINARY [--repeats N] [--no-hf] [--extra DIR]...

Every tool encodes every document of CORPUS_DIR (files in path order) without special tokens
(encode_ordinary). Throughput is MB/s of UTF-8 input, the median of N timed runs after the
corpus is loaded into memory. Sluice's ids are compared with tiktoken's on the whole corpus;
the run fails if a single id differs. Each --extra corpus (multilingual text, pathological
inputs: see make_extra_corpora.py) is then encoded on one thread by tiktoken, gigatoken and
Sluice, its ids compared with tiktoken's too. Ratios go to ratios.py's file when it is set.
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
import ratios
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


def gigatoken_run(args, corpus: str, threads: int, ids_path: str) -> dict:
    """gigatoken in a fresh process (its caches empty): first-pass and median seconds."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), SLUICE_BENCH_IDS_OUT=ids_path)
    out = subprocess.run(
        [sys.executable, __file__, args.vocab, corpus, args.sluice_binary, "--repeats", str(args.repeats),
         "--gigatoken-worker", str(threads)],
        env=env, check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def sluice_run(args, corpus: str, threads: int, ids_path: str) -> float:
    """`TokenizerBenchmark` (the batch encoder, release build): median seconds. Also prints the
    piece cache's hit rate on the corpus (one thread, a fresh cache of the default size) and the
    pre-tokenizer's speed alone (best pass), so the split of encode time is on record, and the
    vocabulary's load time (best of 5), the fixed cost every tokenize task pays."""
    out = subprocess.run(
        [args.sluice_binary, args.vocab, corpus, str(threads), str(args.repeats), ids_path],
        check=True, capture_output=True, text=True,
    )
    result = json.loads(out.stdout)
    if threads == 1 and result["cache_probes"]:
        print(f"sluice piece cache ({result['cache_bytes'] >> 20} MiB) on {pathlib.Path(corpus).name}: "
              f"{result['cache_hits'] / result['cache_probes']:.1%} of {result['cache_probes']:,} probes hit; "
              f"pre-tokenizer alone {result['bytes'] / 1e6 / result['pretokenize_best_seconds']:.0f} MB/s "
              f"({result['pieces']:,} pieces, {result['pretokenize_best_seconds'] / result['median_seconds']:.0%} of encode time); "
              f"vocabulary load (once per tokenize task) {result['vocabulary_load_seconds'] * 1e3:.1f} ms")
    return result["median_seconds"]


def same_ids(ids: np.ndarray, reference: np.ndarray) -> bool:
    return ids.shape == reference.shape and np.array_equal(ids, reference)


def describe_mismatch(ids: np.ndarray, reference: np.ndarray) -> str:
    n = min(len(ids), len(reference))
    first = int(np.argmax(ids[:n] != reference[:n])) if n and (ids[:n] != reference[:n]).any() else n
    return f"{len(ids)} ids vs tiktoken's {len(reference)}; first difference at id {first}"


def extra_corpora(args, encoding, giga_version: str) -> bool:
    """Each corpus of --extra on one thread: tiktoken, gigatoken's first pass, Sluice; ids
    compared with tiktoken's. Returns whether every corpus's ids were identical."""
    print()
    print(f"other corpora, 1 thread, MB/s (median of {args.repeats}; gigatoken: first pass in a fresh process)")
    print(f"{'corpus':<14} {'docs':>7} {'MB':>7} {'tiktoken':>9} {'gigatoken':>10} {'sluice':>8} {'x tiktoken':>11} {'x gigatoken':>12}  ids")
    all_same = True
    for corpus in args.extra:
        name = pathlib.Path(corpus).name
        documents = load_corpus(corpus)
        megabytes = sum(len(d.encode("utf-8")) for d in documents) / 1e6
        tiktoken_seconds, batches = timed(lambda: encoding.encode_ordinary_batch(documents, num_threads=1), args.repeats)
        reference = np.concatenate([np.asarray(b, dtype=np.uint32) for b in batches])
        del batches
        with tempfile.TemporaryDirectory() as scratch:
            ids_path = os.path.join(scratch, "ids.bin")
            giga = gigatoken_run(args, corpus, 1, ids_path)["first_seconds"]
            giga_same = same_ids(np.fromfile(ids_path, dtype="<u4"), reference)
            seconds = sluice_run(args, corpus, 1, ids_path)
            ids = np.fromfile(ids_path, dtype="<u4")
        same = same_ids(ids, reference)
        all_same &= same
        vs_tiktoken, vs_giga = tiktoken_seconds / seconds, giga / seconds
        print(f"{name:<14} {len(documents):>7} {megabytes:>7.1f} {megabytes / tiktoken_seconds:>9.1f} {megabytes / giga:>10.1f} "
              f"{megabytes / seconds:>8.1f} {vs_tiktoken:>10.2f}x {vs_giga:>11.2f}x  "
              f"{'identical' if same else 'MISMATCH: ' + describe_mismatch(ids, reference)}"
              f"{'' if giga_same else ' (gigatoken differs)'}")
        ratios.record(f"tokenizer.{name}.vs_tiktoken", vs_tiktoken, f"sluice / tiktoken, 1 thread, {name}")
        ratios.record(f"tokenizer.{name}.vs_gigatoken", vs_giga, f"sluice / gigatoken {giga_version} first pass, 1 thread, {name}")
    return all_same


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("vocab")
    parser.add_argument("corpus")
    parser.add_argument("sluice_binary")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--extra", action="append", default=[], metavar="DIR",
                        help="another corpus (a folder of documents) compared on one thread with tiktoken and gigatoken")
    parser.add_argument("--no-hf", action="store_true", help="skip HF tokenizers (about 100 s a pass on 100 MB)")
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
    del documents

    import importlib.metadata

    giga_version = importlib.metadata.version("gigatoken")
    mismatched = False
    with tempfile.TemporaryDirectory() as scratch:
        for threads in () if args.no_hf else (1, 2):
            import tokenizers

            ids_path = os.path.join(scratch, f"hf-ids-{threads}.bin")
            env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true", SLUICE_BENCH_IDS_OUT=ids_path)
            out = subprocess.run(
                [sys.executable, __file__, args.vocab, args.corpus, args.sluice_binary, "--repeats", str(args.repeats), "--hf-worker"],
                env=env, check=True, capture_output=True, text=True,
            )
            rows.append((f"HF tokenizers {tokenizers.__version__}", threads, json.loads(out.stdout)["seconds"]))
            same = same_ids(np.fromfile(ids_path, dtype="<u4"), reference)
            print(f"HF tokenizers ({threads} thread(s)): ids {'identical to' if same else 'DIFFER from'} tiktoken's (informative)")

        for threads in (1, 2):
            ids_path = os.path.join(scratch, f"giga-ids-{threads}.bin")
            timing = gigatoken_run(args, args.corpus, threads, ids_path)
            rows.append((f"gigatoken {giga_version} first", threads, timing["first_seconds"]))
            rows.append((f"gigatoken {giga_version} warm", threads, timing["median_seconds"]))
            same = same_ids(np.fromfile(ids_path, dtype="<u4"), reference)
            print(f"gigatoken ({threads} thread(s)): ids {'identical to' if same else 'DIFFER from'} tiktoken's (informative: its Unicode tables are 17's)")

        for threads in (1, 2):
            ids_path = os.path.join(scratch, f"ids-{threads}.bin")
            rows.append(("sluice", threads, sluice_run(args, args.corpus, threads, ids_path)))
            ids = np.fromfile(ids_path, dtype="<u4")
            if not same_ids(ids, reference):
                print(f"MISMATCH ({threads} threads): {describe_mismatch(ids, reference)}")
                mismatched = True
            else:
                print(f"ids identical to tiktoken's ({threads} thread{'s' if threads > 1 else ''}): {len(ids)} ids")
    del reference

    print()
    print(f"{'tool':<30} {'threads':>7} {'seconds':>9} {'MB/s':>8}")
    for name, threads, seconds in rows:
        print(f"{name:<30} {threads:>7} {seconds:>9.3f} {megabytes / seconds:>8.1f}")
    speed = {(n.split()[0], t): megabytes / s for n, t, s in rows if not n.endswith("warm")}
    print()
    for threads in (1, 2):
        sluice = speed[("sluice", threads)]
        hf = f", {sluice / speed[('HF', threads)]:.2f}x HF tokenizers" if ("HF", threads) in speed else ""
        print(f"sluice {threads} thread(s): {sluice / speed[('tiktoken', threads)]:.2f}x tiktoken{hf}, "
              f"{sluice / speed[('gigatoken', threads)]:.2f}x gigatoken (first pass)")
        ratios.record(f"tokenizer.vs_tiktoken.{threads}thread", sluice / speed[("tiktoken", threads)],
                      f"sluice / tiktoken {tiktoken.__version__}, {threads} thread(s), benchmark corpus")
        ratios.record(f"tokenizer.vs_gigatoken.{threads}thread", sluice / speed[("gigatoken", threads)],
                      f"sluice / gigatoken {giga_version} first pass, {threads} thread(s), benchmark corpus")
    scaling = speed[("sluice", 2)] / speed[("sluice", 1)]
    print(f"sluice 1 → 2 threads: {scaling:.2f}x")
    ratios.record("tokenizer.scaling.2threads", scaling, "sluice 2 threads / 1 thread, benchmark corpus")
    if args.extra and not extra_corpora(args, encoding, giga_version):
        mismatched = True
    if mismatched:
        sys.exit(1)


if __name__ == "__main__":
    main()
