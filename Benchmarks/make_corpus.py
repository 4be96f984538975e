"""Builds the benchmark corpus: >= 100 MB of real English prose from Debian documentation.

Sources (installed by `make bench-setup`): the Linux kernel's Documentation tree and its
Sphinx sources (linux-doc-6.1; much of the text appears in both), Python's documentation
sources (python3.11-doc), Perl's POD manuals (perl-doc), Git's manuals (git-doc) and
Django's HTML documentation and Python's library reference reduced to their text
(python-django-doc, python3.11-doc). Every source file becomes one document, decoded as UTF-8 with
invalid bytes replaced (as Sluice's ingest does by default), written under OUT_DIR with a
numbered name so that path order is the build order. Prints the corpus size.
"""
import gzip
import html.parser
import pathlib
import sys

SOURCES = [
    ("/usr/share/doc/linux-doc-6.1/Documentation", "*.gz"),
    ("/usr/share/doc/linux-doc-6.1/html/_sources", "*.txt"),
    ("/usr/share/doc/python3.11/html/_sources", "*.txt"),
    ("/usr/share/perl", "*.pod"),
    ("/usr/share/doc/git-doc", "*.txt"),
    ("/usr/share/doc/python-django-doc/html", "*.html"),
    ("/usr/share/doc/python3.11/html/library", "*.html"),
]


class _TextOnly(html.parser.HTMLParser):
    """Keeps the text of an HTML page, dropping scripts and styles."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def html_text(text: str) -> str:
    parser = _TextOnly()
    parser.feed(text)
    return "".join(parser.parts)


def main(out_dir: str, minimum_bytes: int = 100_000_000) -> None:
    out = pathlib.Path(out_dir)
    marker = out / ".complete"
    if marker.exists():
        print(f"corpus: {marker.read_text().strip()} (already built in {out})")
        return
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    count = 0
    for root, pattern in SOURCES:
        base = pathlib.Path(root)
        if not base.is_dir():
            sys.exit(f"make_corpus: {root} is missing; run `make bench-setup` (it installs the doc packages)")
        for path in sorted(base.rglob(pattern)):
            if not path.is_file():
                continue
            raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            text = raw.decode("utf-8", errors="replace")
            if path.suffix == ".html":
                text = html_text(text)
            if not text.strip():
                continue
            data = text.encode("utf-8")
            (out / f"{count:06d}.txt").write_bytes(data)
            total += len(data)
            count += 1
    if total < minimum_bytes:
        sys.exit(f"make_corpus: only {total} bytes of text found, need {minimum_bytes}")
    summary = f"{count} documents, {total} bytes"
    marker.write_text(summary + "\n")
    print(f"corpus: {summary} in {out}")


if __name__ == "__main__":
    main(sys.argv[1])
