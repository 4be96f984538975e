"""Parts that sluice writes are standard LZ4 frames that Python reads with python-lz4, and the
token stream equals the tiktoken golden for the book's text."""
import json
import struct
import subprocess

import lz4.frame

from conftest import ROOT, SHARED, needs_shared


@needs_shared
def test_verdict_parts_read_in_python(sluice, tmp_path):
    out = tmp_path / "out"
    subprocess.run([sluice, "run", str(ROOT / "pipelines/verdict-tokens.json"), "--out", str(out)], check=True, capture_output=True)
    tokens = lz4.frame.decompress((out / "tokens/part-00000.lz4").read_bytes())
    ids = list(struct.unpack(f"<{len(tokens) // 2}H", tokens))
    golden = json.loads((SHARED / "golden/torch/verdict_tokens.json").read_text())["token_ids"]
    assert ids == golden + [50256]

    docs = lz4.frame.decompress((out / "docs/part-00000.lz4").read_bytes())
    (length,) = struct.unpack_from("<Q", docs)
    assert docs[8:] == (SHARED / "corpus/the-verdict.txt").read_bytes() and length == len(docs) - 8

    sidecar = json.loads((out / "tokens/part-00000.json").read_text())
    assert sidecar["tokens"] == 5146 and sidecar["id_bytes"] == 2 and sidecar["separator_id"] == 50256
    counts = lz4.frame.decompress((out / "tokens/part-00000.doc-tokens.lz4").read_bytes())
    assert struct.unpack("<I", counts) == (5145,)
    report = json.loads((out / "report.json").read_text())
    assert report["tokens"] == 5145 and report["ingest"]["skipped"] == {}
