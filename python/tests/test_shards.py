"""Shards equal the PyTorch reference (shared/golden/torch) bit for bit: windows, batches,
the DataLoader's shuffled order and the input embeddings, for both CPU kernels; they are
standard LZ4 frames holding standard safetensors files."""
import hashlib
import json
import re
import struct
import subprocess
import time

import lz4.frame
import numpy as np
import pytest
from safetensors.numpy import load, load_file

from conftest import HAVE_SHARED, ROOT, SHARED, needs_shared

pytestmark = needs_shared
if HAVE_SHARED:
    GOLDEN = json.loads((SHARED / "golden/torch/verdict_input_embeddings.json").read_text())["cases"]
    LOADER = json.loads((SHARED / "golden/torch/verdict_dataloader.json").read_text())


def raw_tensors(blob: bytes) -> dict:
    """Tensors of a safetensors blob by hand (numpy has no bfloat16): name -> (dtype, shape, bytes)."""
    (length,) = struct.unpack_from("<Q", blob)
    header = json.loads(blob[8 : 8 + length])
    header.pop("__metadata__", None)
    return {name: (info["dtype"], info["shape"], blob[8 + length + info["data_offsets"][0] : 8 + length + info["data_offsets"][1]])
            for name, info in header.items()}


def run_book(sluice, tmp_path, kernel="avx2", shuffle=False, dtype="float32", seed=123):
    config = {
        "inputs": [str(ROOT / "examples/the-verdict.txt")],
        "tokenizer": {"vocab": str(ROOT / "vocab/gpt2/encoder.json"), "merges": str(ROOT / "vocab/gpt2/vocab.bpe")},
        "window": {"max_length": 4, "stride": 4, "batch_size": 8, "shuffle": "torch" if shuffle else False, "seed": seed},
        "embedding": {"output_dim": 256, "context_length": 4, "seed": seed, "torch_kernel": kernel, "dtype": dtype},
        "shards": {"target_bytes": 1_000_000},
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    out = tmp_path / "out"
    subprocess.run([sluice, "run", str(path), "--out", str(out)], check=True, capture_output=True)
    manifest = json.loads((out / "manifest.json").read_text())
    numpy_types = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I32": np.int32}
    shards = []
    for shard in manifest["shards"]:
        tensors = raw_tensors(lz4.frame.decompress((out / shard["file"]).read_bytes()))
        shards.append({name: np.frombuffer(data, numpy_types[kind]).reshape(shape) for name, (kind, shape, data) in tensors.items()})
    merged = {k: np.concatenate([s[k] for s in shards]) for k in shards[0]}
    return out, manifest, merged


@pytest.mark.parametrize("kernel", ["avx2", "default"])
@pytest.mark.parametrize("shuffle", [False, True], ids=["in-order", "torch-shuffle"])
def test_book_batches_bit_exact(sluice, tmp_path, kernel, shuffle):
    out, manifest, data = run_book(sluice, tmp_path, kernel, shuffle)
    case = GOLDEN["seed123_tables_then_loader_shuffle" if shuffle else "seed123_tables_then_loader_noshuffle"][kernel]
    assert manifest["totals"]["windows"] == LOADER["num_windows"] == 1286
    assert manifest["totals"]["batches"] == LOADER["num_batches"] == 160
    assert len(manifest["shards"]) > 1  # small target_bytes: batches split over several shards
    for batch, expected in case["batches"].items():
        rows = slice(int(batch) * 8, int(batch) * 8 + 8)
        assert data["inputs"][rows].tolist() == expected["inputs"]
        assert data["targets"][rows].tolist() == expected["targets"]
        embeddings = np.ascontiguousarray(data["embeddings"][rows]).astype("<f4")
        assert list(embeddings.shape) == expected["input_embeddings"]["shape"]
        assert hashlib.sha256(embeddings.tobytes()).hexdigest() == expected["input_embeddings"]["sha256"]
    tables = load_file(str(out / "tables/token_embedding.safetensors"))["token_embedding"]
    assert hashlib.sha256(tables.astype("<f4").tobytes()).hexdigest() == case["tok"]["sha256"]


def test_negative_seed_is_torchs(sluice, tmp_path):
    """torch.manual_seed(-5) is manual_seed(2**64 - 5). With seed -5, the tables, the DataLoader's
    shuffled order and the input embeddings equal the book's code run live in torch, and the
    manifest records the seed as torch.initial_seed() prints it; 2**64 - 5 gives the same shards."""
    torch = pytest.importorskip("torch", reason="torch is not installed in this venv (scripts/setup.sh installs it)")
    kernel = "avx2" if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") else "default"
    out, manifest, data = run_book(sluice, tmp_path / "negative", kernel, shuffle=True, seed=-5)

    torch.manual_seed(-5)
    assert manifest["embedding"]["seed"] == manifest["window"]["seed"] == torch.initial_seed() == 2**64 - 5
    token_table, position_table = torch.nn.Embedding(50257, 256), torch.nn.Embedding(4, 256)
    ids = json.loads((SHARED / "golden/torch/verdict_tokens.json").read_text())["token_ids"]
    starts = range(0, len(ids) - 4, 4)  # GPTDatasetV1's windows
    windows = torch.utils.data.TensorDataset(torch.tensor([ids[i : i + 4] for i in starts]),
                                             torch.tensor([ids[i + 1 : i + 5] for i in starts]))
    loader = torch.utils.data.DataLoader(windows, batch_size=8, shuffle=True, drop_last=True)
    batches = list(loader)
    assert data["inputs"].tolist() == torch.cat([inputs for inputs, _ in batches]).tolist()
    assert data["targets"].tolist() == torch.cat([targets for _, targets in batches]).tolist()
    with torch.no_grad():
        for number in (0, 1, len(batches) - 1):
            expected = token_table(batches[number][0]) + position_table(torch.arange(4))
            got = np.ascontiguousarray(data["embeddings"][number * 8 : number * 8 + 8])
            assert np.array_equal(got.view(np.uint32), expected.numpy().view(np.uint32))
    tables = load_file(str(out / "tables/token_embedding.safetensors"))["token_embedding"]
    assert np.array_equal(tables.view(np.uint32), token_table.weight.detach().numpy().view(np.uint32))

    _, unsigned, _ = run_book(sluice, tmp_path / "unsigned", kernel, shuffle=True, seed=2**64 - 5)
    assert [s["sha256"] for s in unsigned["shards"]] == [s["sha256"] for s in manifest["shards"]]


def test_torch_shuffle_without_tables_is_the_dataloader_order(sluice, tmp_path):
    """No embedding section: nothing is drawn before the DataLoader, as in verdict_dataloader.json."""
    config = {
        "inputs": [str(ROOT / "examples/the-verdict.txt")],
        "tokenizer": {"vocab": str(ROOT / "vocab/gpt2/encoder.json"), "merges": str(ROOT / "vocab/gpt2/vocab.bpe")},
        "window": {"max_length": 4, "stride": 4, "batch_size": 8, "shuffle": "torch", "seed": 123},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    subprocess.run([sluice, "run", str(tmp_path / "config.json"), "--out", str(tmp_path / "out")], check=True, capture_output=True)
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    data = load(lz4.frame.decompress((tmp_path / "out" / manifest["shards"][0]["file"]).read_bytes()))
    assert set(data) == {"inputs", "targets"} and manifest["embedding"] is None
    ids = json.loads((SHARED / "golden/torch/verdict_tokens.json").read_text())["token_ids"]
    permutation = LOADER["shuffle_after_manual_seed_123"]["epochs"][0]["permutation"]
    assert data["inputs"].tolist() == [ids[4 * i : 4 * i + 4] for i in permutation[:1280]]
    assert data["targets"].tolist() == [ids[4 * i + 1 : 4 * i + 5] for i in permutation[:1280]]
    first = LOADER["shuffle_after_manual_seed_123"]["epoch0_first2_batches"][0]
    assert data["inputs"][:8].tolist() == first["inputs"]


def test_half_precision_embeddings_match_numpy_rounding(sluice, tmp_path):
    _, _, full = run_book(sluice, tmp_path / "f32")
    _, manifest, half = run_book(sluice, tmp_path / "f16", dtype="float16")
    _, _, brain = run_book(sluice, tmp_path / "bf16", dtype="bfloat16")
    assert half["embeddings"].dtype == np.float16
    # numpy's float32 -> float16 cast rounds to nearest even, as torch's .to(float16) does.
    assert np.array_equal(half["embeddings"].view(np.uint16), full["embeddings"].astype(np.float16).view(np.uint16))
    # bfloat16: the top 16 bits of float32 rounded to nearest even (torch's round_to_nearest_even).
    bits = full["embeddings"].view(np.uint32).astype(np.uint64)
    expected = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    assert np.array_equal(brain["embeddings"], expected)
    assert manifest["embedding"]["dtype"] == "float16"


def test_lz4_tool_reads_shards(sluice, tmp_path):
    out, manifest, _ = run_book(sluice, tmp_path)
    shard = out / manifest["shards"][0]["file"]
    raw = subprocess.run(["lz4", "-dc", str(shard)], check=True, capture_output=True).stdout
    assert raw == lz4.frame.decompress(shard.read_bytes())
    assert hashlib.sha256(shard.read_bytes()).hexdigest() == manifest["shards"][0]["sha256"]


def test_pretrained_tables_give_the_same_shards(sluice, tmp_path):
    """init "pretrained" with the tables `sluice tables` wrote equals init "torch" itself."""
    out_torch, _, torch_data = run_book(sluice, tmp_path / "torch")
    tables = tmp_path / "tables.safetensors"
    subprocess.run([sluice, "tables", "--init", "torch", "--seed", "123", "--shape", "50257x256", "--shape", "4x256",
                    "--name", "wte", "--name", "wpe", "--out", str(tables)], check=True, capture_output=True)
    config = json.loads((tmp_path / "torch/config.json").read_text())
    config["embedding"] = {"output_dim": 256, "context_length": 4, "init": "pretrained", "pretrained": str(tables),
                           "token_tensor": "wte", "position_tensor": "wpe"}
    config["window"]["shuffle"] = False
    (tmp_path / "pre.json").write_text(json.dumps(config))
    subprocess.run([sluice, "run", str(tmp_path / "pre.json"), "--out", str(tmp_path / "pre")], check=True, capture_output=True)
    manifest = json.loads((tmp_path / "pre/manifest.json").read_text())
    data = [raw_tensors(lz4.frame.decompress((tmp_path / "pre" / s["file"]).read_bytes())) for s in manifest["shards"]]
    embeddings = np.concatenate([np.frombuffer(d["embeddings"][2], "<f4") for d in data])
    assert np.array_equal(embeddings, torch_data["embeddings"].ravel())
    # A table of the wrong width is named with its shape.
    config["embedding"]["output_dim"] = 128
    (tmp_path / "bad.json").write_text(json.dumps(config))
    result = subprocess.run([sluice, "run", str(tmp_path / "bad.json"), "--out", str(tmp_path / "bad")], capture_output=True, text=True)
    assert result.returncode == 1 and '"wte"' in result.stderr and "[50257, 256]" in result.stderr


def test_output_too_large_for_the_disk_is_refused_before_any_table(sluice, tmp_path):
    config = {
        "inputs": [str(ROOT / "examples/the-verdict.txt")],
        "tokenizer": {"vocab": str(ROOT / "vocab/gpt2/encoder.json"), "merges": str(ROOT / "vocab/gpt2/vocab.bpe")},
        "window": {"max_length": 4, "stride": 1},
        "embedding": {"output_dim": 1048576, "vocab_size": 2147483648},  # 8 PiB of tables: no disk holds that
    }
    (tmp_path / "huge.json").write_text(json.dumps(config))
    start = time.perf_counter()
    result = subprocess.run([sluice, "run", str(tmp_path / "huge.json"), "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert re.search(r"would need about 81[0-9]{2}\.[0-9] TiB but .* has [0-9.]+ [KMGT]iB free", result.stderr), result.stderr
    assert "--force" in result.stderr
    assert time.perf_counter() - start < 30
    assert not (tmp_path / "out/tables").exists()
