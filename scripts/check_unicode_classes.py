"""Checks the generated pre-tokenizer class table against Unicode 16.0 itself.

tiktoken 0.14 classifies scalars with Unicode 16.0.0 tables; unicodedata2==16.0.0 carries
that data. Every code point's class in Sources/SluiceBPE/UnicodeClassTable+Data.swift must
equal: White_Space -> 2, L* -> 0, N* -> 1, else 3. Exit status 1 with the first mismatches.
"""
import pathlib
import re
import sys

import unicodedata2

assert unicodedata2.unidata_version == "16.0.0", unicodedata2.unidata_version

# White_Space (PropList.txt), the set regex-syntax's perl_space uses.
WHITE_SPACE = set(range(0x09, 0x0E)) | {0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000}
WHITE_SPACE |= set(range(0x2000, 0x200B))

root = pathlib.Path(__file__).resolve().parent.parent
source = (root / "Sources/SluiceBPE/UnicodeClassTable+Data.swift").read_text()
body = source.split("[", 1)[1]
entries = [int(x, 16) for x in re.findall(r"0x([0-9a-f]+)", body)]

table = [3] * 0x110000
for i, entry in enumerate(entries):
    start, cls = entry >> 2, entry & 3
    end = (entries[i + 1] >> 2) if i + 1 < len(entries) else 0x110000
    table[start:end] = [cls] * (end - start)

mismatches = []
for cp in range(0x110000):
    if cp in WHITE_SPACE:
        want = 2
    else:
        category = unicodedata2.category(chr(cp))
        want = 0 if category[0] == "L" else 1 if category[0] == "N" else 3
    if table[cp] != want:
        mismatches.append((cp, table[cp], want))

if mismatches:
    for cp, got, want in mismatches[:20]:
        print(f"U+{cp:04X}: table says {got}, Unicode 16.0 says {want}")
    print(f"{len(mismatches)} code points differ")
    sys.exit(1)
print(f"unicode classes: all 1114112 code points match Unicode 16.0.0 ({len(entries)} runs)")
