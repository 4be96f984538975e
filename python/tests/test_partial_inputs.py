"""A partial output (an input not read completely, accepted with on_truncated_input "keep")
warns in Python when it is opened, naming the input."""
import json
import subprocess
import tarfile
import warnings

import pytest

from conftest import GPT2, run_sluice

from sluice_reader import SluiceBatches, SluicePartialInputWarning  # noqa: E402


def _truncated_tar_gz(directory):
    source = directory / "src"
    source.mkdir(parents=True)
    (source / "a.txt").write_text("alpha words and more words " * 4000)
    (source / "b.txt").write_text("beta words, other words " * 40000)
    whole = directory / "whole.tar.gz"
    with tarfile.open(whole, "w:gz") as archive:
        archive.add(source / "a.txt", arcname="a.txt")
        archive.add(source / "b.txt", arcname="b.txt")
    corpus = directory / "corpus"
    corpus.mkdir()
    data = whole.read_bytes()
    (corpus / "cut.tar.gz").write_bytes(data[: len(data) * 2 // 3])
    return corpus


def _config(corpus, **ingest):
    return {
        "inputs": [str(corpus)],
        "tokenizer": GPT2,
        "window": {"max_length": 4, "stride": 4, "batch_size": 8},
        "embedding": {"output_dim": 4},
        "ingest": ingest,
    }


def test_partial_output_warns_when_opened(sluice, tmp_path):
    corpus = _truncated_tar_gz(tmp_path)
    out = run_sluice(sluice, tmp_path, _config(corpus, on_truncated_input="keep"))
    with pytest.warns(SluicePartialInputWarning, match="cut.tar.gz"):
        batches = SluiceBatches(str(out))
    assert len(batches) > 0


def test_complete_output_does_not_warn(sluice, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("alpha words and more words " * 400)
    out = run_sluice(sluice, tmp_path, _config(corpus))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SluicePartialInputWarning)
        SluiceBatches(str(out))


def test_partial_input_exits_4_by_default(sluice, tmp_path):
    corpus = _truncated_tar_gz(tmp_path)
    config = tmp_path / "fail.json"
    config.write_text(json.dumps(_config(corpus)))
    result = subprocess.run([sluice, "run", str(config), "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 4, result.stderr
    assert "cut.tar.gz" in result.stdout + result.stderr
