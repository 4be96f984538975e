"""Checks what `scripts/dev install PREFIX` put under PREFIX: a sluice that runs with only
/usr/bin:/bin on PATH and no Swift runtime library loaded from the toolchain, prints its version
and commit, and comes with its man page and bash/zsh/fish completions."""
import os
import pathlib
import subprocess
import sys

prefix = pathlib.Path(sys.argv[1])
binary = prefix / "bin/sluice"
clean = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
version = subprocess.run([str(binary), "--version"], env=clean, capture_output=True, text=True, check=True).stdout
commit = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], capture_output=True, text=True).stdout.strip()
assert version.startswith("sluice ") and f"source commit {commit}" in version, version
libraries = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
assert "libswift" not in libraries and "libFoundation" not in libraries, libraries
help_text = subprocess.run([str(binary), "run", "--help"], env=clean, capture_output=True, text=True, check=True).stdout
assert "USAGE: sluice run" in help_text
for relative, needle in [
    ("share/man/man1/sluice.1", ".Dt SLUICE 1"),
    ("share/bash-completion/completions/sluice", "complete"),
    ("share/zsh/site-functions/_sluice", "#compdef sluice"),
    ("share/fish/vendor_completions.d/sluice.fish", "complete -c 'sluice'"),
]:
    text = (prefix / relative).read_text()
    assert needle in text, f"{relative} does not look like what it should be"
print(f"install: {version.strip()} from {binary}; man page and bash/zsh/fish completions installed")
