"""The manifest: read, check its config hash, and name what to do when it is wrong."""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from typing import Any, Dict

MANIFEST_FORMAT = "sluice.manifest.v1"


class SluiceIntegrityError(ValueError):
    """A file does not match what the manifest says about it."""


class SluicePartialInputWarning(UserWarning):
    """The output was made from inputs that were not read completely (truncated, corrupt)."""


def swift_json(value: Any, indent: int = 0) -> str:
    """The manifest's config, serialized as Sluice hashes it (2-space indent, ": ", UTF-8)."""
    pad, close = "  " * (indent + 1), "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad}{_swift_string(k)}: {swift_json(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + close + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[\n" + ",\n".join(pad + swift_json(v, indent + 1) for v in value) + "\n" + close + "]"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return _swift_string(value)
    return str(value)


def _swift_string(text: str) -> str:
    out = ['"']
    for char in text:
        code = ord(char)
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif code < 0x20 or code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def open_manifest(root: str) -> Dict[str, Any]:
    """The parsed manifest; raises SluiceIntegrityError if it is damaged or was edited."""
    path = os.path.join(root, "manifest.json")
    try:
        with open(path, "rb") as handle:
            manifest = json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError as error:
        raise SluiceIntegrityError(
            f"{path}: no manifest; is {root} the output of a finished `sluice run` with a window section?"
        ) from error
    except (OSError, ValueError) as error:
        raise SluiceIntegrityError(f"{path}: cannot read the manifest: {error}; run `sluice verify {root}`") from error
    if manifest.get("format") != MANIFEST_FORMAT:
        raise SluiceIntegrityError(f"{path}: format {manifest.get('format')!r}, expected {MANIFEST_FORMAT!r}")
    config_hash = hashlib.sha256(swift_json(manifest["config"]).encode("utf-8")).hexdigest()
    if config_hash != manifest.get("config_sha256"):
        raise SluiceIntegrityError(
            f"{path}: config_sha256 does not match the config it holds (edited or damaged); run `sluice verify {root}`"
        )
    partial = manifest.get("partial_inputs") or []
    if partial:
        first = partial[0]
        where = first.get("file", "?") + (f": member {first['member']!r}" if first.get("member") else "")
        warnings.warn(
            f"{root}: made from {len(partial)} input(s) not read completely (first: {where}, {first.get('reason')}); "
            "see partial_inputs in manifest.json and report.json",
            SluicePartialInputWarning,
            stacklevel=3,
        )
    return manifest


def damaged(path: str, root: str, what: str = "shard") -> SluiceIntegrityError:
    return SluiceIntegrityError(
        f"{path}: SHA-256 does not match the manifest — the {what} is damaged or was replaced; "
        f"run `sluice verify {root}` to list every damaged file, then `sluice run` again to remake them"
    )
