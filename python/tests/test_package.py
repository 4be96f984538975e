"""`pip install ./python` and a built wheel work from anywhere: a fresh venv, installed from
outside the repository, imports sluice_reader from its own site-packages and reads an output."""
import json
import os
import subprocess
import sys

import pytest

from conftest import GPT2, ROOT, run_sluice


@pytest.fixture(scope="module")
def output(sluice, tmp_path_factory):
    config = {
        "inputs": [str(ROOT / "examples/the-verdict.txt")],
        "tokenizer": GPT2,
        "window": {"max_length": 4, "stride": 4, "batch_size": 8},
        "shards": {"kind": "tokens"},
    }
    return run_sluice(sluice, tmp_path_factory.mktemp("package"), config)


CHECK = """
import json, sys, sluice_reader
from sluice_reader import SluiceDataset
ds = SluiceDataset(sys.argv[1])
print(json.dumps({"file": sluice_reader.__file__, "version": sluice_reader.__version__, "len": len(ds), "first": ds[0]["inputs"].tolist()}))
"""


def fresh_venv(path):
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return path / "bin/python"


def check(python, output, cwd):
    result = subprocess.run([str(python), "-c", CHECK, str(output)], cwd=cwd, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


@pytest.mark.parametrize("how", ["directory", "wheel"])
def test_pip_install_from_outside_the_repository(output, tmp_path, how):
    python = fresh_venv(tmp_path / "venv")
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if how == "directory":
        subprocess.run(pip + [str(ROOT / "python")], cwd=tmp_path, check=True)
    else:
        subprocess.run([str(python), "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(ROOT / "python")],
                       cwd=tmp_path, check=True)
        wheels = list((tmp_path / "dist").glob("sluice_reader-*.whl"))
        assert len(wheels) == 1
        subprocess.run(pip + [str(wheels[0])], cwd=tmp_path, check=True)
    found = check(python, output, cwd=tmp_path)
    assert found["file"].startswith(str(tmp_path / "venv")) and not found["file"].startswith(str(ROOT))
    assert found["len"] == 1286 and found["first"] == [40, 367, 2885, 1464]
    metadata = subprocess.run([str(python), "-m", "pip", "show", "sluice-reader"], capture_output=True, text=True, check=True).stdout
    assert "Requires: lz4, numpy" in metadata and found["version"] in metadata
