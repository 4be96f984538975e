"""BPE training: `sluice train-bpe` against HF tokenizers' BpeTrainer on the same corpus, in
one run, each in its own process (wall time and peak RSS), merges compared for equality.

Usage: train_bpe_bench.py SLUICE_BINARY CORPUS_DIR [--vocab-size 32768] [--min-frequency 0]

The same work for both: every file of CORPUS_DIR is one document (UTF-8, invalid bytes
replaced), GPT-2's pre-tokenizer (HF: ByteLevel, add_prefix_space=False), the 256-byte
initial alphabet, one special token <|endoftext|>, vocab_size tokens in all. HF reads the
documents from a Python list already in memory and uses all cores (RAYON_NUM_THREADS unset);
Sluice reads the files itself and counts on all cores.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

HF_CHILD = r"""
import json, os, sys, time, resource
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
corpus, vocab_size, min_frequency, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
names = sorted((os.path.join(r, f) for r, _, fs in os.walk(corpus) for f in fs if not f.startswith(".")),
               key=os.fsencode)
texts = [open(n, "rb").read().decode("utf-8", errors="replace") for n in names]
texts = [t[1:] if t.startswith("\ufeff") else t for t in texts]
start = time.perf_counter()
tokenizer = Tokenizer(models.BPE())
tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=["<|endoftext|>"],
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
tokenizer.train_from_iterator(texts, trainer=trainer)
seconds = time.perf_counter() - start
model = json.loads(tokenizer.to_str())["model"]
merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
with open(out, "w", encoding="utf-8") as handle:
    json.dump({"seconds": seconds, "merges": merges, "vocab": model["vocab"],
               "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, handle)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("corpus")
    parser.add_argument("--vocab-size", type=int, default=32768)
    parser.add_argument("--min-frequency", type=int, default=0)
    parser.add_argument("--out", default="/dev/shm/sluice-train-bench")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    corpus_bytes = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(args.corpus) for f in fs)

    hf_json = os.path.join(args.out, "hf.json")
    subprocess.run([sys.executable, "-c", HF_CHILD, args.corpus, str(args.vocab_size), str(args.min_frequency),
                    hf_json], check=True)
    hf = json.load(open(hf_json, encoding="utf-8"))

    sluice_out = os.path.join(args.out, "sluice")
    start = time.perf_counter()
    run = subprocess.run([args.binary, "train-bpe", args.corpus, "--vocab-size", str(args.vocab_size),
                          "--min-frequency", str(args.min_frequency), "--special-token", "<|endoftext|>",
                          "--out", sluice_out, "--hf"], check=True, capture_output=True, text=True)
    sluice_seconds = time.perf_counter() - start
    # (RUSAGE_CHILDREN would report the larger HF child: take sluice's own getrusage line.)
    sluice_rss = int(re.search(r"peak RSS (\d+) MiB", run.stdout).group(1))
    merges = open(os.path.join(sluice_out, "merges.txt"), encoding="utf-8").read().split("\n")[1:-1]
    vocab = json.load(open(os.path.join(sluice_out, "vocab.json"), encoding="utf-8"))
    first = next((i for i, (a, b) in enumerate(zip(merges, hf["merges"])) if a != b), None)
    same = first is None and len(merges) == len(hf["merges"]) and vocab == hf["vocab"]

    print(f"BPE training: {corpus_bytes / 1e6:.1f} MB ({args.corpus}), vocab {args.vocab_size}, "
          f"min_frequency {args.min_frequency}, {len(merges)} merges")
    print(f"{'tool':<44} {'wall s':>8} {'peak RSS':>10}")
    print(f"{'HF tokenizers ' + __import__('tokenizers').__version__ + ' BpeTrainer (texts in memory)':<44} "
          f"{hf['seconds']:>8.2f} {hf['peak_rss_kib'] / 1024:>7.0f} MiB")
    print(f"{'sluice train-bpe (reads the files too)':<44} {sluice_seconds:>8.2f} {sluice_rss:>7d} MiB   "
          f"({hf['seconds'] / sluice_seconds:.2f}x HF)")
    print("  " + run.stdout.strip().replace("\n", "\n  "))
    print(f"merges and vocabulary identical to HF's: {same}"
          + ("" if same else f" (first difference at merge {first})"))
    shutil.rmtree(args.out, ignore_errors=True)
    if not same:
        raise SystemExit("merges differ from HF's")


if __name__ == "__main__":
    main()
