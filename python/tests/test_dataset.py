"""SluiceDataset against the real tools: token shards whose windows equal GPTDatasetV1's (torch
goldens, and the book's own loop at other sizes), ≤ 2 bytes per GPT-2 id, epochs that reshuffle,
DataLoader workers and ranks without duplicates, exact resume (in process, StatefulDataLoader
with workers, a plain loader, another world size), and integrity errors that name the file."""
import json
import os
import pickle
import shutil
import subprocess

import lz4.frame
import numpy as np
import pytest

from conftest import GPT2, ROOT, SHARED, needs_shared, run_sluice
from sluice_reader import SluiceBatches, SluiceDataset, SluiceIntegrityError, dataset_state

torch = pytest.importorskip("torch", reason="torch is not installed in this venv (scripts/setup.sh installs it)")
from torch.utils.data import DataLoader  # noqa: E402

def run(sluice, directory, inputs, window, shards, name="out"):
    config = {"inputs": [str(i) for i in inputs], "tokenizer": GPT2, "window": window, "shards": shards}
    return run_sluice(sluice, directory, config, name)


@pytest.fixture(scope="module")
def verdict(sluice, tmp_path_factory):
    """The book's chapter-2 settings, stored as the token stream."""
    return run(sluice, tmp_path_factory.mktemp("verdict"), [ROOT / "examples/the-verdict.txt"],
               {"max_length": 4, "stride": 4, "batch_size": 8}, {"kind": "tokens"})


@pytest.fixture(scope="module")
def corpus_inputs(tmp_path_factory):
    """30 documents (150 k ids): five token shards of one 64 KiB block each."""
    directory = tmp_path_factory.mktemp("corpus-in")
    text = (ROOT / "examples/the-verdict.txt").read_text()
    for i in range(30):
        words = text.split(" ")
        (directory / f"doc{i:02}.txt").write_text(f"Copy {i}. " + " ".join(words[i * 7:] + words[: i * 7]))
    return directory


@pytest.fixture(scope="module")
def corpus(sluice, corpus_inputs, tmp_path_factory):
    return run(sluice, tmp_path_factory.mktemp("corpus"), [corpus_inputs],
               {"max_length": 16, "stride": 16, "batch_size": 8}, {"kind": "tokens", "target_bytes": 1})


def stream_of(out):
    """The token stream by an independent path: each shard decompressed whole by python-lz4."""
    manifest = json.loads((out / "manifest.json").read_text())
    return np.concatenate([np.frombuffer(lz4.frame.decompress((out / s["file"]).read_bytes()), "<u2")
                           for s in manifest["shards"]]).astype(np.int64)


def book_windows(ids, max_length, stride):
    """GPTDatasetV1's loop, as the book writes it."""
    inputs, targets = [], []
    for i in range(0, len(ids) - max_length, stride):
        inputs.append(ids[i:i + max_length])
        targets.append(ids[i + 1:i + max_length + 1])
    return np.array(inputs, np.int64).reshape(-1, max_length), np.array(targets, np.int64).reshape(-1, max_length)


def indices(loader):
    return [int(i) for batch in loader for i in batch["index"]]


# -- the compact output --------------------------------------------------------------------------

def test_token_shards_take_at_most_two_bytes_per_id(verdict):
    manifest = json.loads((verdict / "manifest.json").read_text())
    tokens = manifest["totals"]["tokens"]
    on_disk = sum(s["bytes"] for s in manifest["shards"]) + manifest["token_stream"]["documents"]["bytes"]
    assert manifest["shards_kind"] == "tokens" and manifest["token_stream"]["dtype"] == "uint16"
    assert sum(s["content_bytes"] for s in manifest["shards"]) == 2 * tokens
    assert on_disk / tokens <= 2.0, f"{on_disk / tokens:.3f} bytes per id"
    assert sorted(p.name for p in (verdict / "shards").iterdir()) == ["documents.idx", "tokens-00000.lz4"]


@needs_shared
def test_windows_equal_gptdatasetv1_goldens(verdict):
    golden = json.loads((SHARED / "golden/torch/verdict_dataloader.json").read_text())
    tokens = json.loads((SHARED / "golden/torch/verdict_tokens.json").read_text())
    ids = tokens["token_ids"]
    assert stream_of(verdict).tolist() == ids
    ds = SluiceDataset(str(verdict))
    assert len(ds) == golden["num_windows"] == 1286
    assert [ds.window_start(i) for i in range(5)] == golden["window_starts_first"]
    assert [ds.window_start(i) for i in range(len(ds) - 3, len(ds))] == golden["window_starts_last"]
    batches = list(DataLoader(ds, batch_size=8, drop_last=True))
    assert len(batches) == golden["num_batches"]
    for got, want in zip(batches, golden["no_shuffle"]["batches"]):
        assert got["inputs"].tolist() == want["inputs"] and got["targets"].tolist() == want["targets"]
        assert got["inputs"].dtype == torch.int64


@pytest.mark.parametrize("max_length,stride", [(4, 4), (8, 3), (32, 32), (256, 128), (5145, 1)])
def test_windows_of_any_size_at_read_time(verdict, max_length, stride):
    inputs, targets = book_windows(stream_of(verdict), max_length, stride)
    ds = SluiceDataset(str(verdict), max_length=max_length, stride=stride)
    assert len(ds) == len(inputs)
    got = list(ds)
    assert all(np.array_equal(g["inputs"], i) and np.array_equal(g["targets"], t) for g, i, t in zip(got, inputs, targets))


def test_windows_across_shards_and_inside_documents(sluice, corpus, corpus_inputs, tmp_path):
    ids = stream_of(corpus)
    manifest = json.loads((corpus / "manifest.json").read_text())
    assert len(manifest["shards"]) == 5
    ds = SluiceDataset(str(corpus), max_length=100, stride=37)
    inputs, _ = book_windows(ids, 100, 37)
    assert all(np.array_equal(ds[i]["inputs"], inputs[i]) for i in range(len(ds)))
    # cross_document false: the batch shards Sluice materializes hold the same windows.
    window = {"max_length": 16, "stride": 16, "batch_size": 8, "cross_document": False, "drop_last": False}
    batches = run(sluice, tmp_path, [corpus_inputs], window, {"kind": "batches"}, "batches")
    tokens = run(sluice, tmp_path, [corpus_inputs], window, {"kind": "tokens"}, "tokens")
    made = np.concatenate([b["inputs"] for b in SluiceBatches(str(batches))])
    cut = np.stack([s["inputs"] for s in SluiceDataset(str(tokens))])
    assert made.shape == cut.shape and np.array_equal(made, cut)


# -- epochs, workers, ranks ----------------------------------------------------------------------

def test_epochs_reshuffle_and_iterate_again(corpus):
    ds = SluiceDataset(str(corpus), shuffle=True, seed=5)
    first = [s["index"] for s in ds]
    assert sorted(first) == list(range(len(ds))) and first != sorted(first)
    with pytest.warns(UserWarning, match="set_epoch"):
        again = [s["index"] for s in ds]
    assert again == first
    ds.set_epoch(1)
    second = [s["index"] for s in ds]
    assert sorted(second) == sorted(first) and second != first
    other = SluiceDataset(str(corpus), shuffle=True, seed=5)
    other.set_epoch(1)
    assert [s["index"] for s in other] == second
    assert [s["index"] for s in SluiceDataset(str(corpus))] == list(range(len(ds)))


def test_dataloader_workers_yield_each_sample_once(corpus):
    ds = SluiceDataset(str(corpus), shuffle=True, seed=1)
    alone = indices(DataLoader(ds, batch_size=8))
    two = indices(DataLoader(ds, batch_size=8, num_workers=2))
    assert len(two) == len(alone) == len(ds) and sorted(two) == sorted(alone)
    # Told the batch size, workers take whole batches in turn: the same order as no workers.
    hinted = SluiceDataset(str(corpus), shuffle=True, seed=1, batch_size=8)
    assert indices(DataLoader(hinted, batch_size=8, num_workers=2)) == alone
    assert indices(DataLoader(hinted, batch_size=8, num_workers=3)) == alone


def test_ranks_get_equal_disjoint_shares(corpus):
    stride = next(s for s in range(16, 40) if len(SluiceDataset(str(corpus), stride=s)) % 3)
    make = lambda **kw: SluiceDataset(str(corpus), stride=stride, shuffle=True, **kw)
    total = len(make())
    dropped = [[s["index"] for s in make(rank=r, world_size=3, drop_last=True)] for r in range(3)]
    assert len({len(d) for d in dropped}) == 1 and len(dropped[0]) == total // 3
    assert len(set(sum(dropped, []))) == 3 * (total // 3)
    padded = [[s["index"] for s in make(rank=r, world_size=3)] for r in range(3)]
    assert [len(p) for p in padded] == [-(-total // 3)] * 3
    flat = sum(padded, [])
    assert set(flat) == set(range(total))
    order = [s["index"] for s in make()]
    assert flat[total:] == order[: len(flat) - total]  # the padding repeats the epoch's first samples


def test_io_per_rank_falls_with_world_size(corpus):
    one = SluiceDataset(str(corpus))
    list(one)
    half = SluiceDataset(str(corpus), rank=1, world_size=2)
    list(half)
    assert one.io_stats()["shards_verified"] == 5 and half.io_stats()["shards_verified"] == 3
    assert half.io_stats()["bytes_read"] < 0.7 * one.io_stats()["bytes_read"]


def test_rank_and_world_size_from_torch_distributed(corpus, tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(f"""
import json, os, sys
import torch.distributed as dist
from torch.utils.data import DataLoader
from sluice_reader import SluiceDataset
dist.init_process_group("gloo")
ds = SluiceDataset({str(corpus)!r}, shuffle=True, seed=2)
steps = 0
for batch in DataLoader(ds, batch_size=16, num_workers=2):
    t = batch["index"].sum()
    dist.all_reduce(t)          # a collective every step: unequal shares would hang here
    steps += 1
json.dump({{"rank": ds.rank, "world": ds.world_size, "steps": steps, "indices": [s["index"] for s in ds]}},
          open(os.path.join({str(tmp_path)!r}, f"rank{{ds.rank}}.json"), "w"))
dist.destroy_process_group()
""")
    subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "torch.distributed.run", "--nproc-per-node", "3",
                    "--master-port", "29531", str(script)], check=True, timeout=180, capture_output=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(3)]
    assert [r["world"] for r in ranks] == [3, 3, 3] and len({r["steps"] for r in ranks}) == 1
    assert len({len(r["indices"]) for r in ranks}) == 1


# -- state ---------------------------------------------------------------------------------------

def test_resume_in_process_is_exact(corpus):
    full = [s["index"] for s in SluiceDataset(str(corpus), shuffle=True, seed=9, rank=1, world_size=2)]
    ds = SluiceDataset(str(corpus), shuffle=True, seed=9, rank=1, world_size=2)
    it = iter(ds)
    seen = [next(it)["index"] for _ in range(300)]
    state = pickle.loads(pickle.dumps(json.loads(json.dumps(ds.state_dict()))))
    resumed = SluiceDataset(str(corpus), shuffle=True, seed=9, rank=1, world_size=2)
    resumed.load_state_dict(state)
    resumed.set_epoch(0)  # what a training loop does first: it keeps the loaded progress
    assert seen + [s["index"] for s in resumed] == full
    with pytest.raises(ValueError, match="another dataset"):
        SluiceDataset(str(corpus), shuffle=True, seed=10).load_state_dict(state)


def test_resume_with_stateful_dataloader_and_workers(corpus):
    sdl = pytest.importorskip("torchdata.stateful_dataloader", reason="torchdata is not installed")
    make = lambda: sdl.StatefulDataLoader(SluiceDataset(str(corpus), shuffle=True, seed=4), batch_size=8, num_workers=2)
    full = indices(make())
    loader = make()
    it = iter(loader)
    seen = [int(i) for _ in range(13) for i in next(it)["index"]]
    state = loader.state_dict()
    del it
    resumed = make()
    resumed.load_state_dict(pickle.loads(pickle.dumps(state)))
    assert seen + indices(resumed) == full


def test_resume_with_a_plain_dataloader_and_samples_seen(corpus):
    make = lambda: SluiceDataset(str(corpus), shuffle=True, seed=4, batch_size=8)
    full = indices(DataLoader(make(), batch_size=8, num_workers=2))
    ds = make()
    it = iter(DataLoader(ds, batch_size=8, num_workers=2))
    seen = [int(i) for _ in range(11) for i in next(it)["index"]]
    state = ds.state_dict(samples_seen=len(seen))
    del it
    resumed = make()
    resumed.load_state_dict(state)
    assert seen + indices(DataLoader(resumed, batch_size=8, num_workers=2)) == full


@pytest.mark.parametrize("old_world,new_world", [(2, 3), (3, 1)])
def test_resume_with_another_world_size_continues_the_global_order(corpus, old_world, new_world):
    sdl = pytest.importorskip("torchdata.stateful_dataloader", reason="torchdata is not installed")
    make = lambda rank, world: SluiceDataset(str(corpus), shuffle=True, seed=8, rank=rank, world_size=world,
                                             drop_last=True, batch_size=8)
    seen, states = [], []
    for rank in range(old_world):  # every rank takes 7 batches, as DDP ranks do in lockstep
        loader = sdl.StatefulDataLoader(make(rank, old_world), batch_size=8, num_workers=2)
        it = iter(loader)
        seen += [int(i) for _ in range(7) for i in next(it)["index"]]
        states.append(dataset_state(loader.state_dict()))
        del it
    assert all(s == states[0] for s in states[1:])  # ranks in lockstep: any rank's state says it all
    rest = []
    for rank in range(new_world):
        ds = make(rank, new_world)
        ds.load_state_dict(states[0])
        rest.append(indices(DataLoader(ds, batch_size=8, num_workers=2)))
    assert len({len(r) for r in rest}) == 1
    everything = seen + sum(rest, [])
    assert len(everything) == len(set(everything)), "a sample was read twice"
    total = len(SluiceDataset(str(corpus)))
    left = total - total % old_world - len(seen)
    assert len(everything) == total - total % old_world - left % new_world  # only drop_last's remainders are dropped
    order = [s["index"] for s in SluiceDataset(str(corpus), shuffle=True, seed=8)]
    position = {g: p for p, g in enumerate(order)}
    for r in rest:  # each new rank continues a contiguous run of the remaining global order
        assert [position[g] for g in r] == sorted(position[g] for g in r)


# -- integrity -----------------------------------------------------------------------------------

def test_verify_full_lazy_and_none(sluice, corpus, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(corpus, damaged)
    shard = damaged / "shards/tokens-00003.lz4"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(SluiceIntegrityError, match=r"tokens-00003\.lz4.*sluice verify"):
        SluiceDataset(str(damaged), verify="full")
    lazy = SluiceDataset(str(damaged))
    assert lazy[0]["inputs"].shape == (16,)  # shard 0 is intact
    with pytest.raises(SluiceIntegrityError, match=r"tokens-00003\.lz4"):
        list(lazy)
    SluiceDataset(str(damaged), verify="none")  # trusts the files: nothing hashed
    result = subprocess.run([sluice, "verify", str(damaged)], capture_output=True, text=True)
    assert result.returncode != 0 and "tokens-00003.lz4" in result.stdout + result.stderr


# -- the validation split ------------------------------------------------------------------------

def documents_of(out, split):
    """Each document's ids (as a tuple) of one split, from its stream and document index."""
    manifest = json.loads((out / "manifest.json").read_text())
    part = manifest if split == "train" else manifest["splits"]["validation"]
    ids = np.concatenate([np.frombuffer(lz4.frame.decompress((out / s["file"]).read_bytes()), "<u2") for s in part["shards"]])
    starts = np.frombuffer((out / part["token_stream"]["documents"]["file"]).read_bytes(), "<u8").astype(int)
    ends = list(starts[1:] - 1) + [len(ids)]
    return [tuple(ids[a:b].tolist()) for a, b in zip(starts, ends)]


def test_validation_split_by_content(sluice, corpus, corpus_inputs, tmp_path):
    mixed = ROOT / "examples/mixed"
    window = {"max_length": 16, "stride": 16, "batch_size": 8}
    split = {"validation_fraction": 0.25, "seed": 3}

    def make(name, inputs, part_bytes):
        config = {"inputs": [str(i) for i in inputs], "ingest": {"part_bytes": part_bytes}, "tokenizer": GPT2,
                  "window": window, "shards": {"kind": "tokens"}, "split": split}
        return run_sluice(sluice, tmp_path / name, config, "out", "--workers", "2")

    first = make("a", [corpus_inputs, mixed], 50_000)
    again = make("b", [mixed, corpus_inputs], 7_000)  # other input order, other parts, other tasks
    train, validation = documents_of(first, "train"), documents_of(first, "validation")
    assert 0 < len(validation) < len(train)
    assert set(validation) == set(documents_of(again, "validation"))
    assert set(train) == set(documents_of(again, "train"))
    assert not set(train) & set(validation)
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["totals"]["documents"] + manifest["splits"]["validation"]["totals"]["documents"] == len(train) + len(validation)
    ds = SluiceDataset(str(first), split="validation", max_length=16, stride=16)
    stream = np.concatenate([np.frombuffer(lz4.frame.decompress((first / s["file"]).read_bytes()), "<u2")
                             for s in manifest["splits"]["validation"]["shards"]]).astype(np.int64)
    inputs, targets = book_windows(stream, 16, 16)
    assert len(ds) == len(inputs) == manifest["splits"]["validation"]["totals"]["windows"]
    assert all(np.array_equal(s["inputs"], i) and np.array_equal(s["targets"], t) for s, i, t in zip(ds, inputs, targets))
    with pytest.raises(ValueError, match="no validation split"):
        SluiceDataset(str(corpus), split="validation")


def test_collate_windows_equals_the_default_collate(corpus):
    from torch.utils.data import default_collate

    from sluice_reader import collate_windows

    ds = SluiceDataset(str(corpus), shuffle=True, seed=3)
    samples = [ds[i] for i in range(8)]
    ours, theirs = collate_windows(samples), default_collate(samples)
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) and ours[k].dtype == theirs[k].dtype for k in ours)
    assert ours["inputs"].untyped_storage().data_ptr() == ours["targets"].untyped_storage().data_ptr()
    loaded = indices(DataLoader(SluiceDataset(str(corpus), batch_size=8), batch_size=8, num_workers=2, collate_fn=collate_windows))
    assert loaded == list(range(len(ds)))
