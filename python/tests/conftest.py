import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path(os.environ.get("SLUICE_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def sluice() -> str:
    """The built sluice binary (make test builds it first)."""
    binary = os.environ.get("SLUICE_BINARY") or str(ROOT / ".build/debug/sluice")
    if not os.access(binary, os.X_OK):
        subprocess.run(["swift", "build"], cwd=ROOT, check=True)
    return binary
