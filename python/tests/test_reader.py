"""The Python reader against shards that Sluice wrote in the same run: checksums verified,
batches equal to the shard contents, ranks disjoint and complete, exact mid-epoch resume;
and `sluice verify` and the reader both catch one flipped byte anywhere."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "python"))
from sluice_reader import SluiceBatches, SluiceIntegrityError  # noqa: E402


@pytest.fixture(scope="module")
def output(sluice, tmp_path_factory):
    directory = tmp_path_factory.mktemp("reader")
    config = {
        "inputs": [str(ROOT / "examples/the-verdict.txt")],
        "tokenizer": {"vocab": str(ROOT / "vocab/gpt2/encoder.json"), "merges": str(ROOT / "vocab/gpt2/vocab.bpe")},
        "window": {"max_length": 8, "stride": 8, "batch_size": 4, "shuffle": True, "seed": 7},
        "embedding": {"output_dim": 16, "seed": 7, "dtype": "bfloat16"},
        "shards": {"target_bytes": 20000},
    }
    (directory / "config.json").write_text(json.dumps(config))
    out = directory / "out"
    subprocess.run([sluice, "run", str(directory / "config.json"), "--out", str(out)], check=True, capture_output=True)
    return out


def test_batches_cover_the_output(output):
    batches = SluiceBatches(str(output))
    manifest = batches.manifest
    assert len(batches) == manifest["totals"]["batches"] and len(manifest["shards"]) > 1
    all_batches = list(batches)
    assert all(b["inputs"].shape == (4, 8) and b["embeddings"].shape == (4, 8, 16) for b in all_batches)
    assert all_batches[0]["embeddings"].dtype == np.float32
    inputs = np.concatenate([b["inputs"] for b in all_batches])
    assert np.array_equal(inputs[:, 1:], np.concatenate([b["targets"] for b in all_batches])[:, :-1])


def test_ranks_are_disjoint_and_complete(output):
    everything = [b["inputs"].tobytes() for b in SluiceBatches(str(output))]
    ranks = [[b["inputs"].tobytes() for b in SluiceBatches(str(output), rank, 3)] for rank in range(3)]
    assert sorted(sum(ranks, [])) == sorted(everything)
    assert sum(len(r) for r in ranks) == len(everything)
    assert ranks[1][0] == everything[1]


def test_resume_mid_epoch(output):
    first = SluiceBatches(str(output), 1, 2)
    seen = [next(iter(first))["inputs"].tobytes() for _ in range(3)]
    state = first.state_dict()
    resumed = SluiceBatches(str(output), 1, 2)
    resumed.load_state_dict(state)
    rest = [b["inputs"].tobytes() for b in resumed]
    assert seen + rest == [b["inputs"].tobytes() for b in SluiceBatches(str(output), 1, 2)]
    with pytest.raises(ValueError):
        SluiceBatches(str(output), 0, 2).load_state_dict(state)


def flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("target", ["shard", "table", "tokenizer", "manifest-number", "manifest-config"])
def test_one_flipped_byte_is_caught(sluice, output, tmp_path, target):
    import shutil

    copy = tmp_path / "out"
    shutil.copytree(output, copy)
    manifest_text = (copy / "manifest.json").read_text()
    if target == "shard":
        flip(copy / "shards/shard-00001.safetensors.lz4", 1234)
    elif target == "table":
        flip(copy / "tables/token_embedding.safetensors", 5000)
    elif target == "tokenizer":
        flip(copy / "tokenizer.tiktoken", 100)
    elif target == "manifest-number":
        (copy / "manifest.json").write_text(manifest_text.replace('"windows": ', '"windows": 1', 1))
    else:
        (copy / "manifest.json").write_text(manifest_text.replace('"seed": 7', '"seed": 8', 1))
    result = subprocess.run([sluice, "verify", str(copy)], capture_output=True, text=True)
    assert result.returncode == 1, result.stdout
    assert "problem" in result.stderr
    if target in ("shard", "manifest-config"):
        with pytest.raises(SluiceIntegrityError):
            list(SluiceBatches(str(copy)))


def test_verify_passes_on_intact_output(sluice, output):
    result = subprocess.run([sluice, "verify", str(output)], capture_output=True, text=True)
    assert result.returncode == 0 and "OK" in result.stdout


def test_torch_iterable_dataset_resumes_exactly(output):
    """Runs where PyTorch is installed (not in CI, which keeps PyTorch out by design)."""
    torch = pytest.importorskip("torch")
    from sluice_reader import SluiceIterableDataset

    dataset = SluiceIterableDataset(str(output), rank=0, world_size=2)
    everything = list(dataset)
    assert len(everything) == len(dataset) > 3
    assert everything[0]["inputs"].dtype == torch.int32 and everything[0]["embeddings"].dtype == torch.bfloat16
    reference = SluiceBatches(str(output), 0, 2, raw_bfloat16=True)
    for item, batch in zip(everything, reference):
        assert torch.equal(item["inputs"], torch.from_numpy(np.array(batch["inputs"])))
        assert item["embeddings"].view(torch.int16).numpy().view(np.uint16).tolist() == batch["embeddings"].tolist()

    first = SluiceIterableDataset(str(output), rank=0, world_size=2)
    iterator = iter(first)
    head = [next(iterator) for _ in range(3)]
    state = first.state_dict()
    resumed = SluiceIterableDataset(str(output), rank=0, world_size=2)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert [b["inputs"].tolist() for b in head + rest] == [b["inputs"].tolist() for b in everything]
    loader = torch.utils.data.DataLoader(SluiceIterableDataset(str(output)), batch_size=None)
    assert sum(1 for _ in loader) == SluiceBatches(str(output)).total_batches
