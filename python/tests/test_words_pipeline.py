"""The word-level tokenizer and pretrained word vectors through `sluice run`: the book's
vocabulary and ids on the-verdict (../shared/golden/words), and GloVe 6B 50d as the token table
of pipelines/glove-verdict.json — read back with the reader, row for row."""
import json
import pathlib
import re

import lz4.frame
import numpy as np
import pytest

from conftest import ROOT, SHARED, needs_shared, run_sluice

GLOVE = ROOT / "vocab/glove-6b-50d/glove.6B.50d.safetensors"
needs_glove = pytest.mark.skipif(not GLOVE.exists(), reason="vocab/glove-6b-50d is missing (scripts/setup.sh fetches it)")
SPLIT = re.compile(r'([,.:;?_!"()\']|--|\s)')


def book_pieces(text):
    return [p.strip() for p in SPLIT.split(text) if p.strip()]


def token_stream(out):
    """The run's token stream from its tokens parts, the last separator dropped."""
    ids = []
    for part in sorted((out / "tokens").glob("part-*.json")):
        sidecar = json.loads(part.read_text())
        data = lz4.frame.decompress((out / "tokens" / part.name.replace(".json", ".lz4")).read_bytes())
        ids.extend(np.frombuffer(data, dtype="<u2" if sidecar["id_bytes"] == 2 else "<u4").tolist())
    return ids[:-1] if sidecar["separator_id"] is not None else ids


def read_glove():
    raw = GLOVE.read_bytes()
    header = int.from_bytes(raw[:8], "little")
    matrix = np.frombuffer(raw[8 + header:], dtype="<f4").reshape(-1, 50)
    keys = GLOVE.with_name("glove.6B.50d.vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    return keys, matrix


@needs_shared
def test_book_vocabulary_and_ids_through_a_run(sluice, tmp_path):
    """tokenizer.words with no vocab_from builds the book's vocabulary from the documents (count
    tasks + tokenizer task) and gives the book's 4,690 ids."""
    golden = [json.loads(line) for line in (SHARED / "golden/words/words.jsonl").read_text(encoding="utf-8").split("\n") if line]
    config = {"inputs": [str(SHARED / "corpus/the-verdict.txt")], "tokenizer": {"words": {}}}
    out = run_sluice(sluice, tmp_path, config)
    vocabulary = (out / "tokenizer.words.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert vocabulary == golden[0]["tokens"] and len(vocabulary) == 1132
    assert token_stream(out) == golden[1]["ids"]
    report = json.loads((out / "report.json").read_text())
    assert report["vocabulary"]["unknown_tokens"] == 0 and report["vocabulary"]["size"] == 1132
    # A token table one row short of that vocabulary is refused by the window task, before any
    # table is drawn (config check cannot know a vocabulary built from the documents).
    import subprocess
    config.update({"window": {"max_length": 4, "stride": 4}, "embedding": {"output_dim": 4, "vocab_size": 1131}})
    (tmp_path / "short.json").write_text(json.dumps(config))
    done = subprocess.run([sluice, "run", str(tmp_path / "short.json"), "--out", str(out)], capture_output=True, text=True)
    assert done.returncode != 0 and "embedding.vocab_size is 1131" in done.stderr, done.stderr
    assert "set vocab_size to at least 1132" in done.stderr and not (out / "tables").exists()


@needs_glove
def test_glove_pipeline_rows_are_glove_rows(sluice, tmp_path):
    """pipelines/glove-verdict.json: ids are the positions of the lower-cased pieces among
    GloVe's keys (<|unk|> otherwise); each window's embeddings are GloVe's row of its word plus
    the position row; rows without a vector and the position table are torch's of seed 123."""
    torch = pytest.importorskip("torch")
    from sluice_reader import SluiceBatches

    config = json.loads((ROOT / "pipelines/glove-verdict.json").read_text())
    config["inputs"] = [str(ROOT / "examples/the-verdict.txt")]
    config["tokenizer"]["words"]["vocab_from"] = str(GLOVE)
    config["embedding"]["vectors"] = str(GLOVE)
    out = run_sluice(sluice, tmp_path, config)
    keys, glove = read_glove()
    index = {key: i for i, key in enumerate(keys)}
    eot, unk = len(keys), len(keys) + 1
    text = (ROOT / "examples/the-verdict.txt").read_text(encoding="utf-8")
    expected = [index.get(piece.lower(), unk) for piece in book_pieces(text)]
    assert token_stream(out) == expected

    torch.manual_seed(123)
    token_table = torch.nn.Embedding(len(keys) + 2, 50).weight.detach().numpy()
    position = torch.nn.Embedding(4, 50).weight.detach().numpy()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tokenizer"]["special_tokens"] == {"<|endoftext|>": eot, "<|unk|>": unk}
    checked = 0
    for batch in SluiceBatches(str(out)):
        inputs = np.asarray(batch["inputs"])
        embeddings = np.asarray(batch["embeddings"])
        for b in range(inputs.shape[0]):
            for t in range(inputs.shape[1]):
                word = inputs[b, t]
                row = glove[word] if word < len(keys) else token_table[word]
                assert np.array_equal(embeddings[b, t], row + position[t]), (b, t, word)
                checked += 1
    assert checked == 146 * 8 * 4
    report = json.loads((out / "report.json").read_text())["vocabulary"]
    unknown = sum(1 for i in expected if i == unk)
    assert report["unknown_tokens"] == unknown and report["unknown_rate"] == pytest.approx(unknown / len(expected))
    assert report["unknown_pieces"] == len({p.lower() for p in book_pieces(text) if p.lower() not in index})
    assert report["vectors"]["rows_without_vector"] == 2


def test_words_config_rules(sluice, tmp_path):
    """The rules config check enforces for words and vectors, each one line naming the key."""
    import subprocess

    def check(config):
        path = tmp_path / "c.json"
        path.write_text(json.dumps({"inputs": ["x.txt"], **config}))
        done = subprocess.run([sluice, "config", "check", str(path)], capture_output=True, text=True)
        return done.returncode, done.stdout + done.stderr

    code, text = check({"tokenizer": {"words": {}, "special_tokens": {"<|endoftext|>": 5}}})
    assert code != 0 and "special_tokens" in text
    code, text = check({"tokenizer": {"words": {}, "vocab": "x.tiktoken"}})
    assert code != 0 and "tokenizer.words" in text
    code, text = check({"tokenizer": {"vocab": "x.tiktoken"}, "window": {},
                        "embedding": {"init": "pretrained", "vectors": "v.txt"}})
    assert code != 0 and "word-level tokenizer" in text
    code, text = check({"tokenizer": {"words": {}}, "window": {}, "embedding": {"init": "pretrained"}})
    assert code != 0 and "vectors" in text
    vectors = {"tokenizer": {"words": {"lowercase": True}}, "window": {},
               "embedding": {"init": "pretrained", "vectors": "v.txt", "output_dim": 3}}
    code, text = check(vectors)
    assert code != 0 and "embedding.vectors" in text and "v.txt" in text and len(text.strip().splitlines()) == 1
    (tmp_path / "v.txt").write_text("king 1 2 3 4\nqueen 5 6 7 8\n")
    code, text = check(vectors)
    assert code != 0 and "4-dimensional" in text and "output_dim is 3" in text
    vectors["embedding"]["output_dim"] = 4
    code, _ = check(vectors)
    assert code == 0
    code, text = check({"tokenizer": {"words": {"vocab_from": "missing.bin"}}})
    assert code != 0 and "tokenizer.words.vocab_from" in text and "missing.bin" in text


@needs_shared
def test_encode_and_decode_words_on_the_command_line(sluice, tmp_path):
    """`sluice encode --words` builds the book's vocabulary of its input (--save-vocab keeps
    it) and gives the book's ids; `sluice decode --words` gives the book's text back."""
    import subprocess

    golden = [json.loads(line) for line in (SHARED / "golden/words/words.jsonl").read_text(encoding="utf-8").split("\n") if line]
    vocab = tmp_path / "words.txt"
    done = subprocess.run([sluice, "encode", "--words", str(SHARED / "corpus/the-verdict.txt"), "--save-vocab", str(vocab)],
                          capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == golden[1]["ids"]
    assert vocab.read_text(encoding="utf-8").split("\n")[:-1] == golden[0]["tokens"]
    for case in golden[2:-1]:
        encoded = subprocess.run([sluice, "encode", "--words", "--vocab", str(vocab)], input=case["text"].encode(),
                                 capture_output=True, check=True)
        assert json.loads(encoded.stdout) == case["ids"], case["text"]
        decoded = subprocess.run([sluice, "decode", "--words", "--vocab", str(vocab)], input=encoded.stdout,
                                 capture_output=True, check=True)
        assert decoded.stdout.decode() == case["decoded"], case["text"]
    decoded = subprocess.run([sluice, "decode", "--words", "--vocab", str(vocab)], input=json.dumps(golden[-1]["ids"]).encode(),
                             capture_output=True, check=True)
    assert decoded.stdout.decode() == golden[-1]["text"]
    bad = subprocess.run([sluice, "decode", "--words", "--vocab", str(vocab)], input="[5000]", capture_output=True, text=True)
    assert bad.returncode == 1 and "5000" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
