"""Word vectors: Sluice beside gensim 4.4 on the full GloVe 6B 50d (400,000 × 50), same files,
same run, one core (OPENBLAS_NUM_THREADS=1 for gensim's BLAS; Sluice is single-threaded).

  load    GloVe text and word2vec binary (written by `sluice vectors convert`, which writes what
          gensim's save_word2vec_format writes): gensim's load_word2vec_format in-process vs
          Sluice's load as `sluice vectors query --timing` reports it (whole process too).
  query   one most_similar(king + woman - man), warm (norms already computed), in ms.
  stream  1,000 mixed queries (most_similar, similarity, n_similarity, doesnt_match) through
          `sluice vectors query` vs the same calls on a loaded gensim KeyedVectors; answers compared.

Usage: python vectors_bench.py SLUICE GLOVE.safetensors WORKDIR [--runs N]
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from gensim.models import KeyedVectors  # noqa: E402


def timed(function, runs):
    times = []
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def sluice_query(sluice, path, fmt, lines):
    start = time.perf_counter()
    done = subprocess.run([sluice, "vectors", "query", path, "--format", fmt, "--timing"], input=lines,
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    timing = json.loads(done.stderr.strip().splitlines()[-1])
    return wall, timing, [json.loads(line) for line in done.stdout.splitlines()]


def make_queries(keys, count, seed=7):
    rng = random.Random(seed)
    common = keys[:10000]
    queries = []
    for index in range(count):
        kind = index % 10
        if kind < 5:
            positive = rng.sample(common, rng.choice([1, 2]))
            negative = rng.sample(common, rng.choice([0, 1]))
            queries.append({"id": index, "op": "most_similar", "args": {"positive": positive, "negative": negative, "topn": 10}})
        elif kind < 8:
            queries.append({"id": index, "op": "similarity", "args": {"w1": rng.choice(common), "w2": rng.choice(common)}})
        elif kind == 8:
            queries.append({"id": index, "op": "n_similarity", "args": {"ws1": rng.sample(common, 2), "ws2": rng.sample(common, 2)}})
        else:
            queries.append({"id": index, "op": "doesnt_match", "args": {"words": rng.sample(common, 4)}})
    return queries


def gensim_answer(kv, query):
    args = query["args"]
    op = query["op"]
    if op == "most_similar":
        return kv.most_similar(positive=args["positive"], negative=args["negative"], topn=args["topn"])
    if op == "similarity":
        return float(kv.similarity(args["w1"], args["w2"]))
    if op == "n_similarity":
        return float(kv.n_similarity(args["ws1"], args["ws2"]))
    return kv.doesnt_match(args["words"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("sluice")
    parser.add_argument("glove")
    parser.add_argument("work")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--queries", type=int, default=1000)
    options = parser.parse_args()
    os.makedirs(options.work, exist_ok=True)
    text = os.path.join(options.work, "glove.6B.50d.txt")
    binary = os.path.join(options.work, "glove.6B.50d.bin")
    for path, fmt in ((text, "glove"), (binary, "word2vec-binary")):
        if not os.path.exists(path):
            subprocess.run([options.sluice, "vectors", "convert", options.glove, "--to", fmt, path], check=True,
                           capture_output=True)

    print(f"word vectors: GloVe 6B 50d, 400,000 × 50; text {os.path.getsize(text) / 1e6:.0f} MB, "
          f"binary {os.path.getsize(binary) / 1e6:.0f} MB; median of {options.runs}, one core")
    print(f"{'':28} {'gensim 4.4':>12} {'Sluice':>12} {'ratio':>8}")
    loaded = {}
    for label, path, fmt, kwargs in (("load GloVe text (s)", text, "glove", {"binary": False, "no_header": True}),
                                     ("load word2vec binary (s)", binary, "word2vec-binary", {"binary": True})):
        gensim_seconds, kv = timed(lambda: KeyedVectors.load_word2vec_format(path, **kwargs), options.runs)
        loaded[fmt] = kv
        runs = [sluice_query(options.sluice, path, fmt, "") for _ in range(options.runs)]
        sluice_seconds = statistics.median(timing["load_seconds"] for _, timing, _ in runs)
        process = statistics.median(wall for wall, _, _ in runs)
        print(f"{label:28} {gensim_seconds:12.3f} {sluice_seconds:12.3f} {gensim_seconds / sluice_seconds:7.1f}×"
              f"   (Sluice whole process {process:.3f} s: {gensim_seconds / process:.1f}×)")

    kv = loaded["word2vec-binary"]
    kv.fill_norms()
    one = {"id": 0, "op": "most_similar", "args": {"positive": ["king", "woman"], "negative": ["man"], "topn": 10}}
    gensim_one, gensim_result = timed(lambda: kv.most_similar(positive=["king", "woman"], negative=["man"]), max(5, options.runs))
    repeated = "".join(json.dumps(one) + "\n" for _ in range(20))
    _, timing, answers = sluice_query(options.sluice, binary, "word2vec-binary", repeated)
    sluice_one = timing["answer_seconds"] / timing["queries"]
    assert [k for k, _ in answers[0]["result"]] == [k for k, _ in gensim_result], "king + woman - man differs"
    print(f"{'one most_similar (ms)':28} {1e3 * gensim_one:12.2f} {1e3 * sluice_one:12.2f} {gensim_one / sluice_one:7.2f}×"
          f"   (→ {answers[0]['result'][0][0]} {answers[0]['result'][0][1]:.4f} both)")

    keys = kv.index_to_key
    queries = make_queries(keys, options.queries)
    stdin = "".join(json.dumps(q) + "\n" for q in queries)
    start = time.perf_counter()
    expected = [gensim_answer(kv, q) for q in queries]
    gensim_seconds = time.perf_counter() - start
    wall, timing, answers = sluice_query(options.sluice, binary, "word2vec-binary", stdin)
    same = 0
    for query, want, got in zip(queries, expected, answers):
        result = got["result"]
        if query["op"] == "most_similar":
            same += [k for k, _ in result] == [k for k, _ in want] and all(
                abs(a[1] - b[1]) <= 2e-6 for a, b in zip(result, want))
        elif query["op"] == "doesnt_match":
            same += result == want
        else:
            same += abs(result - want) <= 2e-6
    print(f"{'1,000 queries (queries/s)':28} {len(queries) / gensim_seconds:12.0f} "
          f"{timing['queries'] / timing['answer_seconds']:12.0f} {gensim_seconds / timing['answer_seconds']:7.2f}×"
          f"   (Sluice whole process incl. load {wall:.2f} s; {same}/{len(queries)} answers agree within 2e-6)")
    rss = subprocess.run(["/usr/bin/time", "-f", "%M", options.sluice, "vectors", "query", binary], input="",
                         capture_output=True, text=True)
    if rss.returncode == 0:
        print(f"Sluice peak RSS with the binary file loaded: {int(rss.stderr.strip().splitlines()[-1]) / 1024:.0f} MiB "
              f"(matrix {400000 * 50 * 4 / 2**20:.0f} MiB, norms {400000 * 4 / 2**20:.1f} MiB)")
    if same != len(queries):
        sys.exit(f"{len(queries) - same} answers differ from gensim's")


if __name__ == "__main__":
    main()
