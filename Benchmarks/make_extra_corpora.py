"""Builds the tokenizer benchmark's other corpora beside the English one: real multilingual text
and code from Debian packages, and pathological inputs derived from the benchmark corpus.

Usage: make_extra_corpora.py BENCH_CORPUS_DIR OUT_DIR

OUT_DIR/multilingual: the Debian Reference as plain text in Japanese, Chinese and German
(debian-reference-ja/-zh-cn/-de), the Japanese, Chinese, Russian and German manual pages
(manpages-ja/-zh/-ru/-de) and source code (Python's standard library, C headers), each source
capped at 4 MB of UTF-8 and split into documents of about 8 KB at line ends; invalid bytes are
replaced, as Sluice's ingest does by default.

OUT_DIR/<pathological>: one-line (the benchmark corpus joined into one 100 MB line), tiny-docs
(100,000 documents of one to twelve words), spaces, digits and emoji (4 MB documents of long
runs of each, separated by short words). Deterministic: the same input gives the same files.
Nothing is rebuilt when OUT_DIR/.complete exists.
"""
import gzip
import pathlib
import random
import sys

CAP = 4_000_000
DOCUMENT = 8_000


def read_text(path: pathlib.Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def sources() -> list[tuple[str, list[pathlib.Path]]]:
    def files(root: str, pattern: str) -> list[pathlib.Path]:
        return sorted(p for p in pathlib.Path(root).rglob(pattern) if p.is_file())

    reference = "/usr/share/debian-reference"
    return [
        ("ja-reference", [pathlib.Path(f"{reference}/debian-reference.ja.txt.gz")]),
        ("zh-reference", [pathlib.Path(f"{reference}/debian-reference.zh-cn.txt.gz")]),
        ("de-reference", [pathlib.Path(f"{reference}/debian-reference.de.txt.gz")]),
        ("ja-man", files("/usr/share/man/ja", "*.gz")),
        ("zh-man", files("/usr/share/man/zh_CN", "*.gz")),
        ("ru-man", files("/usr/share/man/ru", "*.gz")),
        ("de-man", files("/usr/share/man/de", "*.gz")),
        ("python-code", files("/usr/lib/python3.11", "*.py")),
        ("c-headers", files("/usr/include", "*.h")),
    ]


def split(text: str) -> list[str]:
    """Documents of about DOCUMENT bytes, cut after a line end."""
    documents, start = [], 0
    while start < len(text):
        end = text.find("\n", start + DOCUMENT)
        end = len(text) if end < 0 else end + 1
        documents.append(text[start:end])
        start = end
    return documents


def write(directory: pathlib.Path, documents: list[str]) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    total = 0
    for index, document in enumerate(documents):
        data = document.encode("utf-8")
        (directory / f"{index:06d}.txt").write_bytes(data)
        total += len(data)
    return total


def multilingual(out: pathlib.Path) -> None:
    documents = []
    for name, paths in sources():
        if not paths or not paths[0].exists():
            sys.exit(f"make_extra_corpora: {name} is not installed; run scripts/setup.sh bench")
        taken = 0
        for path in paths:
            text = read_text(path)
            taken += len(text.encode("utf-8"))
            documents.extend(split(text))
            if taken >= CAP:
                break
        print(f"  {name}: {taken / 1e6:.1f} MB from {path.parent}")
    total = write(out / "multilingual", documents)
    print(f"multilingual: {len(documents)} documents, {total / 1e6:.1f} MB")


def pathological(corpus: pathlib.Path, out: pathlib.Path) -> None:
    paths = sorted(p for p in corpus.iterdir() if p.is_file() and not p.name.startswith("."))
    text = "".join(p.read_bytes().decode("utf-8") for p in paths)
    words = text.split()
    generator = random.Random(15)

    one_line = " ".join(text.splitlines())
    write(out / "one-line", [one_line])
    tiny = [" ".join(generator.choices(words, k=generator.randint(1, 12))) for _ in range(100_000)]
    write(out / "tiny-docs", tiny)

    def runs(make_run) -> list[str]:
        documents = []
        for _ in range(4):
            parts, size = [], 0
            while size < 1_000_000:
                part = make_run() + generator.choice(words)
                parts.append(part)
                size += len(part.encode("utf-8"))
            documents.append("".join(parts))
        return documents

    write(out / "spaces", runs(lambda: " " * generator.choice([1, 2, 3, 8, 64, 1000, 20_000]) + ("\n" if generator.random() < 0.2 else "")))
    write(out / "digits", runs(lambda: " " + "".join(generator.choices("0123456789", k=generator.choice([1, 3, 7, 50, 5000]))) + " "))
    emoji = ["😀", "🎉", "👍🏽", "🇩🇪", "👨‍👩‍👧", "❤️", "🚀", "✨"]
    write(out / "emoji", runs(lambda: " " + "".join(generator.choices(emoji, k=generator.choice([1, 2, 5, 40, 2000]))) + " "))
    for name in ("one-line", "tiny-docs", "spaces", "digits", "emoji"):
        size = sum(p.stat().st_size for p in (out / name).iterdir())
        print(f"{name}: {len(list((out / name).iterdir()))} documents, {size / 1e6:.1f} MB")


def main() -> None:
    corpus, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    if (out / ".complete").exists():
        return
    multilingual(out)
    pathological(corpus, out)
    (out / ".complete").write_text("")


if __name__ == "__main__":
    main()
