"""Writes Tests/SluiceIngestTests/Fixtures/utf8-replace.json: byte strings and what CPython's
`bytes.decode("utf-8", errors="replace")` makes of them (re-encoded as UTF-8), plus the number
of U+FFFD it inserted. Sluice's ingest must repair invalid UTF-8 exactly this way.

Run: python3 scripts/make_utf8_goldens.py   (deterministic: fixed seed)
"""
import json
import pathlib
import random
import sys

HAND_MADE = [
    b"", b"plain ascii", b"caf\xc3\xa9", b"\xff", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xe2\x82(", b"\xe2(\xa1",
    b"\xf0\x9f\x98", b"\xf0\x9f\x98\x80", b"\xf0\x80\x80\x80", b"\xf4\x90\x80\x80", b"\xed\xa0\x80", b"\xed\x9f\xbf",
    b"\xc0\xaf", b"\xe0\x80\xaf", b"\xe0\xa0\x80", b"\x80\x80\x80", b"\xfe\xfe\xff\xff", b"a\xf1\x80\x80\xe1\x80\xc2b",
    b"Latin-1: na\xefve caf\xe9 \xa9 1999", b"\xef\xbb\xbfBOM then text", b"\x00nul\x00", b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80",
]


def main() -> None:
    rng = random.Random(20261122)
    alphabet = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF]
    cases = list(HAND_MADE)
    for _ in range(2000):
        length = rng.randint(1, 12)
        cases.append(bytes(rng.choice(alphabet) if rng.random() < 0.8 else rng.randint(0, 255) for _ in range(length)))
    records = []
    for raw in cases:
        text = raw.decode("utf-8", errors="replace")
        records.append({
            "input": raw.hex(),
            "output": text.encode("utf-8").hex(),
            "replaced": text.count("\ufffd") - raw.decode("utf-8", errors="ignore").count("\ufffd"),
        })
    out = pathlib.Path(__file__).resolve().parent.parent / "Tests/SluiceIngestTests/Fixtures/utf8-replace.json"
    out.write_text(json.dumps({"python": sys.version.split()[0], "cases": records}, indent=0) + "\n")
    print(f"wrote {len(records)} cases to {out}")


if __name__ == "__main__":
    main()
