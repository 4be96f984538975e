"""`sluice train-bpe` against HF tokenizers' BpeTrainer, run here on the same documents.

The reference is produced at test time by the real tool (tokenizers, pinned in
requirements-test.txt): a BPE model, the ByteLevel pre-tokenizer (add_prefix_space=False,
use_regex=True) and BpeTrainer(vocab_size, min_frequency, special_tokens,
initial_alphabet=ByteLevel.alphabet()). Merges must be identical, in order, and so must the
vocabulary. The corpora include ones built to be full of ties.
"""
import json
import pathlib
import random
import subprocess

import pytest

tokenizers = pytest.importorskip("tokenizers")
from tokenizers import Tokenizer, models, pre_tokenizers, trainers  # noqa: E402

from conftest import ROOT  # noqa: E402


def hf_train(texts, vocab_size, min_frequency=0, special_tokens=()):
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    model = json.loads(tokenizer.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return model["vocab"], merges


def sluice_train(sluice, tmp_path, texts, vocab_size, min_frequency=0, special_tokens=()):
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    for index, text in enumerate(texts):
        (corpus / f"{index:06d}.txt").write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    command = [sluice, "train-bpe", str(corpus), "--vocab-size", str(vocab_size), "--min-frequency",
               str(min_frequency), "--out", str(out), "--hf"]
    for token in special_tokens:
        command += ["--special-token", token]
    subprocess.run(command, check=True, capture_output=True)
    vocab = json.loads((out / "vocab.json").read_text(encoding="utf-8"))
    merges = (out / "merges.txt").read_text(encoding="utf-8").split("\n")[1:-1]
    return vocab, merges, out


def verdict_paragraphs():
    text = (ROOT / "examples/the-verdict.txt").read_text(encoding="utf-8")
    return [p for p in text.split("\n\n") if p.strip()]


def tie_corpus():
    # Every pair equally frequent, in several orders: only the tie rule decides.
    words = ["ab", "ba", "cd", "dc", "abcd", "dcba", "xy", "yx", "aa", "bb", "zz z", "zzz"]
    rng = random.Random(7)
    return [" ".join(rng.sample(words, len(words))) for _ in range(30)]


def unicode_corpus():
    rng = random.Random(11)
    alphabet = list("aeiouáéíóúñçßøåæœ") + ["日本", "語", "中文", "한국어", "🙂", "🚀", "👩‍💻", "ß", "İ", "ﬁ", "\u0301"]
    docs = []
    for _ in range(200):
        words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(rng.randint(3, 30))]
        sep = rng.choice([" ", "  ", "\n", "\t", " , ", "'s ", "123 ", "\r\n"])
        docs.append(sep.join(words))
    return docs


def mixed_records():
    texts = [json.loads(line)["text"] for line in (ROOT / "examples/mixed/records.jsonl").read_text().splitlines()]
    return texts + [p.read_text(encoding="utf-8") for p in sorted((ROOT / "examples/mixed/notes").glob("*.txt"))]


CASES = [
    ("verdict-300", verdict_paragraphs, 300, 0, ()),
    ("verdict-2000", verdict_paragraphs, 2000, 0, ()),
    ("verdict-minfreq", verdict_paragraphs, 5000, 3, ()),
    ("verdict-specials", verdict_paragraphs, 1000, 0, ("<|endoftext|>", "<pad>")),
    ("ties", tie_corpus, 400, 0, ()),
    ("ties-minfreq", tie_corpus, 400, 31, ()),
    ("unicode", unicode_corpus, 1500, 0, ("<|endoftext|>",)),
    ("unicode-minfreq", unicode_corpus, 1500, 2, ()),
    ("mixed", mixed_records, 1200, 0, ("<|endoftext|>",)),
]


@pytest.mark.parametrize("name,corpus,vocab_size,min_frequency,special", CASES, ids=[c[0] for c in CASES])
def test_merges_equal_hf(sluice, tmp_path, name, corpus, vocab_size, min_frequency, special):
    texts = corpus()
    hf_vocab, hf_merges = hf_train(texts, vocab_size, min_frequency, special)
    vocab, merges, _ = sluice_train(sluice, tmp_path, texts, vocab_size, min_frequency, special)
    assert len(hf_merges) > 5
    first_difference = next((i for i, (a, b) in enumerate(zip(merges, hf_merges)) if a != b), None)
    assert first_difference is None and len(merges) == len(hf_merges), (
        f"{name}: first difference at merge {first_difference}: "
        f"sluice {merges[first_difference:first_difference + 3] if first_difference is not None else merges[len(hf_merges):][:3]} "
        f"HF {hf_merges[first_difference:first_difference + 3] if first_difference is not None else hf_merges[len(merges):][:3]}")
    assert vocab == hf_vocab


def test_trained_vocab_encodes_and_round_trips(sluice, tmp_path):
    """The rank file loads in the encoder; encoding the training text gives it back."""
    texts = verdict_paragraphs()
    _, _, out = sluice_train(sluice, tmp_path, texts, 1000, 0, ("<|endoftext|>",))
    special = json.loads((out / "special_tokens.json").read_text())
    assert special == {"<|endoftext|>": 999}
    text = "\n\n".join(texts)
    ids = subprocess.run([sluice, "encode", "--vocab", str(out / "vocab.tiktoken")], input=text.encode(),
                         check=True, capture_output=True).stdout
    decoded = subprocess.run([sluice, "decode", "--vocab", str(out / "vocab.tiktoken")], input=ids,
                             check=True, capture_output=True).stdout
    assert decoded == text.encode()
    assert len(json.loads(ids)) < len(text.encode()) / 2  # it learned something
