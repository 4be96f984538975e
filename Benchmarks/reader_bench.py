"""Reader throughput: Sluice's SluiceDataset beside litdata's StreamingDataset (TokensLoader) and
mosaic streaming's StreamingDataset, on the same token stream, in one run.

    reader_bench.py SLUICE CORPUS_DIR WORK_DIR [--runs 3]

Sluice tokenizes CORPUS_DIR into token shards (`"shards": {"kind": "tokens"}`); the same ids,
cut into blocks of 1,025 (max_length 1,024 + 1), are written with litdata's `optimize` and
mosaic's `MDSWriter`. Every reader then yields the same samples — block i of the stream —
checked on the first ones; each is timed over a whole epoch through a torch DataLoader
(batch 32) with 0 and 2 workers, in order and shuffled, page cache warm (one untimed pass).
Sluice's loaders use its collate_windows (one tensor a batch). Sluice yields inputs/targets int64 by default (split and widened: 8× the bytes of the peers'
raw uint16 blocks through the DataLoader's worker queues); "sluice16" is id_dtype="uint16".
Prints samples/s and MB/s of token data (2 bytes an id) per reader, the ratios to Sluice, and
each output's bytes on disk per token. Run with .venv-readers (scripts/setup.sh readers) and
PYTHONPATH=Benchmarks/stubs (mosaic imports torchvision at package import).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from torch.utils.data import DataLoader

BLOCK = 1025
BATCH = 32


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def make_sluice(sluice, corpus, work):
    out = os.path.join(work, "sluice")
    config = {
        "inputs": [os.path.abspath(corpus)],
        "tokenizer": {"vocab": os.path.abspath("vocab/gpt2/encoder.json"), "merges": os.path.abspath("vocab/gpt2/vocab.bpe")},
        "window": {"max_length": BLOCK - 1, "stride": BLOCK},
        "shards": {"kind": "tokens"},
    }
    path = os.path.join(work, "sluice.json")
    with open(path, "w") as handle:
        json.dump(config, handle)
    if not os.path.exists(os.path.join(out, "manifest.json")):
        subprocess.run([sluice, "run", path, "--out", out, "--log", "text"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


def stream_of(out):
    import lz4.frame

    manifest = json.load(open(os.path.join(out, "manifest.json")))
    return np.concatenate([np.frombuffer(lz4.frame.decompress(open(os.path.join(out, s["file"]), "rb").read()), "<u2")
                           for s in manifest["shards"]])


def make_litdata(ids, work, blocks):
    from functools import partial

    from litdata import TokensLoader, optimize

    out = os.path.join(work, "litdata")
    if not os.path.exists(os.path.join(out, "index.json")):
        shutil.rmtree(out, ignore_errors=True)
        stream = os.path.join(work, "ids.npy")
        np.save(stream, ids[: blocks * BLOCK])
        optimize(fn=partial(_litdata_chunk, stream), inputs=list(range(0, blocks, 2048)), output_dir=out,
                 chunk_size=BLOCK * 2048 * 8, item_loader=TokensLoader(), num_workers=1, mode="overwrite")
    return out


def _litdata_chunk(stream, first):
    """2,048 blocks of the stream as one uint16 tensor (litdata's TokensLoader concatenates them)."""
    ids = np.load(stream, mmap_mode="r")
    stop = min(first + 2048, len(ids) // BLOCK)
    yield torch.from_numpy(np.array(ids[first * BLOCK : stop * BLOCK]).view(np.int16)).view(torch.uint16)


def make_mosaic(ids, work, blocks):
    from streaming import MDSWriter

    out = os.path.join(work, "mosaic")
    if not os.path.exists(os.path.join(out, "index.json")):
        shutil.rmtree(out, ignore_errors=True)
        with MDSWriter(out=out, columns={"tokens": f"ndarray:uint16:{BLOCK}"}, size_limit=1 << 27) as writer:
            for i in range(blocks):
                writer.write({"tokens": ids[i * BLOCK : (i + 1) * BLOCK]})
    return out


def readers(paths, shuffle, workers, blocks):
    from litdata import StreamingDataLoader, StreamingDataset, TokensLoader
    from streaming import StreamingDataLoader as MosaicLoader
    from streaming import StreamingDataset as MosaicDataset
    from sluice_reader import SluiceDataset, collate_windows

    sluice = SluiceDataset(paths["sluice"], shuffle=shuffle, seed=1, max_length=BLOCK - 1, stride=BLOCK, batch_size=BATCH)
    loader = DataLoader(sluice, batch_size=BATCH, num_workers=workers, collate_fn=collate_windows)
    yield "sluice", loader, lambda b: b["inputs"].shape[0]
    # The peers deliver raw uint16 blocks; this is Sluice delivering the same bytes.
    raw = SluiceDataset(paths["sluice"], shuffle=shuffle, seed=1, max_length=BLOCK - 1, stride=BLOCK, batch_size=BATCH,
                        id_dtype="uint16")
    loader = DataLoader(raw, batch_size=BATCH, num_workers=workers, collate_fn=collate_windows)
    yield "sluice16", loader, lambda b: b["inputs"].shape[0]
    lit = StreamingDataset(paths["litdata"], item_loader=TokensLoader(block_size=BLOCK), shuffle=shuffle, seed=1)
    yield "litdata", StreamingDataLoader(lit, batch_size=BATCH, num_workers=workers), lambda b: b.shape[0]
    mosaic = MosaicDataset(local=paths["mosaic"], shuffle=shuffle, shuffle_seed=1, batch_size=BATCH)
    yield "mosaic", MosaicLoader(mosaic, batch_size=BATCH, num_workers=workers), lambda b: b["tokens"].shape[0]


def epoch(loader, count):
    start = time.perf_counter()
    samples = sum(count(batch) for batch in loader)
    return samples, time.perf_counter() - start


def check_same_samples(paths, ids):
    from litdata import StreamingDataset, TokensLoader
    from streaming import StreamingDataset as MosaicDataset
    from sluice_reader import SluiceDataset

    sluice = SluiceDataset(paths["sluice"], max_length=BLOCK - 1, stride=BLOCK)
    lit = StreamingDataset(paths["litdata"], item_loader=TokensLoader(block_size=BLOCK))
    mosaic = MosaicDataset(local=paths["mosaic"], batch_size=1)
    for i in (0, 1, 7):
        s = sluice[i]
        block = np.concatenate([s["inputs"], s["targets"][-1:]])
        assert np.array_equal(block, ids[i * BLOCK : (i + 1) * BLOCK])
        assert np.array_equal(np.asarray(lit[i]).astype(np.int64) & 0xFFFF, block), "litdata block differs"
        assert np.array_equal(mosaic[i]["tokens"].astype(np.int64), block), "mosaic block differs"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("sluice")
    parser.add_argument("corpus")
    parser.add_argument("work")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    torch.set_num_threads(1)
    paths = {"sluice": make_sluice(args.sluice, args.corpus, args.work)}
    ids = stream_of(paths["sluice"])
    blocks = (len(ids) - 1) // BLOCK  # what SluiceDataset cuts: starts < len - 1024, stride 1025
    paths["litdata"] = make_litdata(ids, args.work, blocks)
    paths["mosaic"] = make_mosaic(ids, args.work, blocks)
    check_same_samples(paths, ids)
    print(f"reader benchmark: {len(ids):,} GPT-2 ids, {blocks:,} samples of {BLOCK} ids, batch {BATCH}, {args.runs} timed epochs each")
    sizes = {"sluice": du(os.path.join(paths["sluice"], "shards")), "litdata": du(paths["litdata"]), "mosaic": du(paths["mosaic"])}
    print("on disk per id (what a trainer reads): " + ", ".join(f"{name} {size / len(ids):.3f} B" for name, size in sizes.items()))
    for shuffle in (False, True):
        for workers in (0, 2):
            results = {}
            for name, loader, count in readers(paths, shuffle, workers, blocks):
                epoch(loader, count)  # warm: page cache, worker start-up paths, imports
                times = []
                for _ in range(args.runs):
                    samples, seconds = epoch(loader, count)
                    times.append(seconds)
                assert samples >= blocks - 2 * BATCH, f"{name} yielded {samples} of {blocks}"
                median = statistics.median(times)
                results[name] = (samples / median, samples * BLOCK * 2 / median / 1e6, min(times), max(times))
            base = results["sluice"][0]
            label = f"shuffle={'yes' if shuffle else 'no '} workers={workers}"
            for name, (rate, mb, low, high) in results.items():
                ratio = "" if name.startswith("sluice") else (
                    f"  sluice is {base / rate:.2f}× {name}, sluice16 {results['sluice16'][0] / rate:.2f}×")
                print(f"  {label}  {name:9} {rate:10,.0f} samples/s  {mb:8.1f} MB/s  (epoch {low:.2f}–{high:.2f} s){ratio}")


if __name__ == "__main__":
    main()
