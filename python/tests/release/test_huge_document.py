"""One 300 MB document on one line, made here, through the installed release binary: it streams
through ingest and tokenize in bounded memory (peak RSS per worker ≤ 256 MiB) and its ids are
tiktoken's `encode_ordinary` of the whole text. `scripts/dev test` runs this after
`scripts/dev install` with SLUICE_BINARY set to the installed binary; a debug build would take
many minutes, so this directory is left out of the debug pass."""
import json
import pathlib

import lz4.frame
import numpy as np
import pytest

from conftest import GPT2, SHARED, needs_shared

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
TARGET_BYTES = 300_000_000
PEAK_RSS_LIMIT = 256 << 20


def one_line_text() -> str:
    """The Verdict's words with every line break a space, repeated with a numbered, mixed-script
    marker (digits, letters with accents, CJK, an emoji, runs of spaces) so that no repeat
    tokenizes the same way at its edges, until it is 300 MB: one line, no newline anywhere."""
    words = " ".join((SHARED / "corpus/the-verdict.txt").read_text(encoding="utf-8").split())
    pieces, size, copy = [], 0, 0
    while size < TARGET_BYTES:
        piece = f" [{copy}] café 東京 👋{' ' * (copy % 5)}{words}"
        pieces.append(piece)
        size += len(piece.encode())
        copy += 1
    return "".join(pieces)


@needs_shared
def test_a_300_mb_line_streams_in_bounded_memory_with_tiktokens_ids(sluice, tmp_path):
    if "/.build/debug/" in sluice:
        pytest.skip("a 300 MB document needs the release binary: scripts/dev test runs this after install")
    import subprocess

    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    text = one_line_text()
    line = tmp_path / "one-line.txt"
    line.write_text(text, encoding="utf-8")
    assert b"\n" not in line.read_bytes()[:1 << 20] and line.stat().st_size >= TARGET_BYTES
    config = tmp_path / "one-line.json"
    config.write_text(json.dumps({"inputs": [str(line)], "tokenizer": GPT2}))
    out = tmp_path / "out"
    done = subprocess.run([sluice, "run", str(config), "--out", str(out), "--workers", "1"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["ingest"]["documents"] == 1 and not report["ingest"]["skipped"], report["ingest"]
    peaks = {name: stage["peak_rss_bytes"] for name, stage in report["timing"]["stages"].items()}
    assert all(peak <= PEAK_RSS_LIMIT for peak in peaks.values()), peaks

    parts = sorted(p for p in (out / "tokens").glob("part-*.lz4") if ".doc-tokens" not in p.name)
    ids = np.concatenate([np.frombuffer(lz4.frame.decompress(p.read_bytes()), dtype="<u2") for p in parts])
    encoding = tiktoken.Encoding(name="gpt2-from-file", pat_str=GPT2_PATTERN,
                                 mergeable_ranks=load_tiktoken_bpe(str(SHARED / "vocab/gpt2.tiktoken")),
                                 special_tokens={})
    expected = np.array(encoding.encode_ordinary(text), dtype="<u2")
    separator = json.loads((out / "tokens/part-00000.json").read_text())["separator_id"]
    expected = np.append(expected, np.uint16(separator))  # each document ends with <|endoftext|>
    if not np.array_equal(ids, expected):
        common = min(len(ids), len(expected))
        first = int(np.argmax(ids[:common] != expected[:common]))
        pytest.fail(f"{len(ids)} ids, tiktoken {len(expected)}; first difference at id {first}")
