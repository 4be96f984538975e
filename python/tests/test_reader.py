"""SluiceBatches (the prepared batches) against shards that Sluice wrote in the same run:
checksums verified, batches equal to the shard contents, equal contiguous rank shares, a second
pass, exact mid-epoch resume; and `sluice verify` and the reader both catch one flipped byte."""
import json
import subprocess

import numpy as np
import pytest

from conftest import GPT2, ROOT, run_sluice

from sluice_reader import SluiceBatches, SluiceIntegrityError  # noqa: E402


@pytest.fixture(scope="module")
def output(sluice, tmp_path_factory):
    config = {
        "inputs": [str(ROOT / "examples/the-verdict.txt")],
        "tokenizer": GPT2,
        "window": {"max_length": 8, "stride": 8, "batch_size": 4, "shuffle": True, "seed": 7},
        "embedding": {"output_dim": 16, "seed": 7, "dtype": "bfloat16"},
        "shards": {"target_bytes": 20000},
    }
    return run_sluice(sluice, tmp_path_factory.mktemp("reader"), config)


def test_batches_cover_the_output(output):
    batches = SluiceBatches(str(output))
    manifest = batches.manifest
    assert len(batches) == manifest["totals"]["batches"] and len(manifest["shards"]) > 1
    all_batches = list(batches)
    assert all(b["inputs"].shape == (4, 8) and b["embeddings"].shape == (4, 8, 16) for b in all_batches)
    assert all_batches[0]["embeddings"].dtype == np.float32
    inputs = np.concatenate([b["inputs"] for b in all_batches])
    assert np.array_equal(inputs[:, 1:], np.concatenate([b["targets"] for b in all_batches])[:, :-1])


def test_ranks_get_equal_contiguous_shares(output):
    everything = [b["inputs"].tobytes() for b in SluiceBatches(str(output))]
    assert len(everything) % 3 != 0
    share = -(-len(everything) // 3)
    ranks = [[b["inputs"].tobytes() for b in SluiceBatches(str(output), rank, 3)] for rank in range(3)]
    assert [len(r) for r in ranks] == [share] * 3
    assert sum(ranks, [])[: len(everything)] == everything  # rank r reads batches r·share …
    assert sum(ranks, [])[len(everything):] == everything[: 3 * share - len(everything)]  # padding
    dropped = [[b["inputs"].tobytes() for b in SluiceBatches(str(output), rank, 3, drop_last=True)] for rank in range(3)]
    assert sum(dropped, []) == everything[: 3 * (len(everything) // 3)]


def test_a_second_pass_reads_every_batch_again(output):
    batches = SluiceBatches(str(output))
    assert len(list(batches)) == len(list(batches)) == batches.total_batches


def test_resume_mid_epoch(output):
    first = SluiceBatches(str(output), 1, 2)
    iterator = iter(first)
    seen = [next(iterator)["inputs"].tobytes() for _ in range(3)]
    state = first.state_dict()
    resumed = SluiceBatches(str(output), 1, 2)
    resumed.load_state_dict(json.loads(json.dumps(state)))
    rest = [b["inputs"].tobytes() for b in resumed]
    assert seen + rest == [b["inputs"].tobytes() for b in SluiceBatches(str(output), 1, 2)]
    with pytest.raises(ValueError, match="another dataset"):
        SluiceBatches(str(output), 0, 2, shuffle=True).load_state_dict(state)


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


def test_torch_dataloader_over_batches(output):
    torch = pytest.importorskip("torch", reason="torch is not installed in this venv")
    everything = list(SluiceBatches(str(output), 0, 2))
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(SluiceBatches(str(output), 0, 2), batch_size=None, num_workers=workers)
        items = list(loader)
        assert len(items) == len(everything)
        for item, batch in zip(items, everything):  # each batch once, in order, as tensors
            assert torch.equal(item["inputs"], torch.from_numpy(batch["inputs"]))
            assert torch.equal(item["embeddings"], torch.from_numpy(batch["embeddings"]))
    raw = next(iter(SluiceBatches(str(output), raw_bfloat16=True)))["embeddings"]
    exact = next(iter(SluiceBatches(str(output))))["embeddings"]
    assert raw.dtype == np.uint16 and np.array_equal((raw.astype(np.uint32) << 16).view(np.float32), exact)
