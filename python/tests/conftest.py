import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path(os.environ.get("SLUICE_SHARED", ROOT.parent / "shared"))
HAVE_SHARED = (SHARED / "golden").is_dir()
#: Tests that compare against the reference tools' outputs in ../shared skip without it.
needs_shared = pytest.mark.skipif(not HAVE_SHARED, reason=f"{SHARED} (reference goldens) is not beside the repository")


@pytest.fixture(scope="session")
def sluice() -> str:
    """The built sluice binary (scripts/dev test builds it first)."""
    binary = os.environ.get("SLUICE_BINARY") or str(ROOT / ".build/debug/sluice")
    if not os.access(binary, os.X_OK):
        subprocess.run(["swift", "build"], cwd=ROOT, check=True)
    return binary


#: GPT-2's tokenizer as scripts/setup.sh fetches it (vocab/gpt2), for test configs.
GPT2 = {"vocab": str(ROOT / "vocab/gpt2/encoder.json"), "merges": str(ROOT / "vocab/gpt2/vocab.bpe")}


def run_sluice(sluice, directory, config, name="out", *args):
    """Writes `config` to `directory/NAME.json`, runs `sluice run` on it into `directory/NAME`
    (extra `args` appended) and returns that output directory."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(config))
    out = directory / name
    subprocess.run([sluice, "run", str(path), "--out", str(out), *args], check=True, capture_output=True)
    return out
