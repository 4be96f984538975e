"""`sluice tables` writes safetensors that Python's safetensors loader reads, with exactly the
bits PyTorch's manual_seed + nn.Embedding produce (goldens from torch in ../shared)."""
import json
import subprocess

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import SHARED, needs_shared

pytestmark = needs_shared


@pytest.mark.parametrize("kernel", ["avx2", "default"])
def test_book_tables_bit_exact(sluice, tmp_path, kernel):
    out = tmp_path / "tables.safetensors"
    subprocess.run([sluice, "tables", "--init", "torch", "--seed", "123", "--shape", "6x3", "--shape", "4x3",
                    "--kernel", kernel, "--out", str(out)], check=True, capture_output=True)
    tables = load_file(str(out))
    golden = json.loads((SHARED / "golden/torch/embedding_seed123_tok6x3_pos4x3.json").read_text())
    for name, key in (("token_embedding", "tok"), ("position_embedding", "pos")):
        bits = [f"{b:08x}" for b in tables[name].view(np.uint32).ravel()]
        assert bits == golden[key][kernel]["bits"]
        assert list(tables[name].shape) == golden[key][kernel]["shape"]


def test_gpt2_sized_table_hash(sluice, tmp_path):
    import hashlib

    out = tmp_path / "tables.safetensors"
    subprocess.run([sluice, "tables", "--init", "torch", "--seed", "123", "--shape", "50257x256", "--shape", "4x256",
                    "--out", str(out)], check=True, capture_output=True)
    tables = load_file(str(out))
    golden = json.loads((SHARED / "golden/torch/embedding_seed123_tok50257x256_pos4x256.json").read_text())
    assert hashlib.sha256(tables["token_embedding"].astype("<f4").tobytes()).hexdigest() == golden["tok"]["avx2"]["sha256"]
    assert hashlib.sha256(tables["position_embedding"].astype("<f4").tobytes()).hexdigest() == golden["pos"]["avx2"]["sha256"]


def test_bad_shapes_are_clear(sluice, tmp_path):
    result = subprocess.run([sluice, "tables", "--seed", "1", "--shape", "0x3", "--out", str(tmp_path / "t.safetensors")],
                            capture_output=True, text=True)
    assert result.returncode == 64
    assert "--shape 0x3: expected ROWSxCOLUMNS" in result.stderr


def test_negative_seed_is_torchs(sluice, tmp_path):
    """`--seed -5` is torch.manual_seed(-5), i.e. 2**64 - 5, against torch itself; outside torch's
    range the seed is refused as torch refuses it."""
    torch = pytest.importorskip("torch", reason="torch is not installed in this venv (scripts/setup.sh installs it)")
    kernel = "avx2" if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") else "default"
    files = {}
    for seed in ("-5", str(2**64 - 5)):
        files[seed] = tmp_path / f"{seed}.safetensors"
        subprocess.run([sluice, "tables", "--seed", seed, "--shape", "20x3", "--shape", "4x3", "--kernel", kernel,
                        "--out", str(files[seed])], check=True, capture_output=True)
    assert files["-5"].read_bytes() == files[str(2**64 - 5)].read_bytes()
    tables = load_file(str(files["-5"]))
    torch.manual_seed(-5)
    for name, shape in (("token_embedding", (20, 3)), ("position_embedding", (4, 3))):
        expected = torch.nn.Embedding(*shape).weight.detach().numpy()
        assert np.array_equal(tables[name].view(np.uint32), expected.view(np.uint32))
    for seed in (str(-2**63 - 1), str(2**64)):
        result = subprocess.run([sluice, "tables", "--seed", seed, "--shape", "2x2", "--out", str(tmp_path / "x")],
                                capture_output=True, text=True)
        assert result.returncode == 64 and f"'{seed}' is invalid for '--seed" in result.stderr
