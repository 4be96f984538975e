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
