"""Read a Sluice output directory in a trainer: verified shards, batches as NumPy arrays or
PyTorch tensors, disjoint per data-parallel rank, resumable mid-epoch.

    from sluice_reader import SluiceBatches
    batches = SluiceBatches("out/verdict", rank=0, world_size=1)   # verifies checksums
    for batch in batches:                      # dicts of NumPy arrays, one per batch
        x, y = batch["inputs"], batch["targets"]   # int32 [batch_size, max_length]
        e = batch.get("embeddings")                 # [batch_size, max_length, dim]

With PyTorch installed, `SluiceIterableDataset` wraps the same stream as an
`IterableDataset` with `state_dict()` / `load_state_dict()`.

Needs numpy and lz4 (python-lz4); torch is optional.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from typing import Any, Dict, Iterator, List, Optional

import lz4.frame
import numpy as np

__all__ = ["SluiceBatches", "SluiceIntegrityError", "open_manifest", "SluiceIterableDataset"]

_NUMPY_TYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I32": np.int32, "I64": np.int64}


class SluiceIntegrityError(ValueError):
    """A file does not match what the manifest says about it."""


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _swift_json(value: Any, indent: int = 0) -> str:
    """The manifest's config, serialized as Sluice hashes it (2-space indent, ": ", UTF-8)."""
    pad, close = "  " * (indent + 1), "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad}{_swift_string(k)}: {_swift_json(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + close + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[\n" + ",\n".join(pad + _swift_json(v, indent + 1) for v in value) + "\n" + close + "]"
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
    except (OSError, ValueError) as error:
        raise SluiceIntegrityError(f"{path}: cannot read the manifest: {error}") from error
    if manifest.get("format") != "sluice.manifest.v1":
        raise SluiceIntegrityError(f"{path}: format {manifest.get('format')!r}, expected 'sluice.manifest.v1'")
    config_hash = hashlib.sha256(_swift_json(manifest["config"]).encode("utf-8")).hexdigest()
    if config_hash != manifest.get("config_sha256"):
        raise SluiceIntegrityError(f"{path}: config_sha256 does not match the config it holds (edited or damaged)")
    return manifest


def _tensors(blob: bytes, path: str) -> Dict[str, np.ndarray]:
    (length,) = struct.unpack_from("<Q", blob)
    header = json.loads(blob[8 : 8 + length])
    header.pop("__metadata__", None)
    arrays = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        kind = _NUMPY_TYPES.get(info["dtype"])
        if kind is None:
            raise SluiceIntegrityError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        arrays[name] = np.frombuffer(blob, kind, offset=8 + length + start, count=(end - start) // np.dtype(kind).itemsize).reshape(info["shape"])
    return arrays


class SluiceBatches:
    """The batches of one data-parallel rank: batch k belongs to rank k % world_size, so ranks
    are disjoint, cover every batch, and never depend on timing.

    `verify=True` (default) checks each shard's SHA-256 against the manifest before use.
    `bfloat16` embeddings come back as float32 (exact) unless `raw_bfloat16=True` (uint16 bits).
    """

    def __init__(self, root: str, rank: int = 0, world_size: int = 1, verify: bool = True, raw_bfloat16: bool = False):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        self.root = root
        self.rank = rank
        self.world_size = world_size
        self.verify = verify
        self.raw_bfloat16 = raw_bfloat16
        self.manifest = open_manifest(root)
        self.batch_size = self.manifest["window"]["batch_size"]
        self.total_batches = self.manifest["totals"]["batches"]
        self._batches: List[int] = list(range(rank, self.total_batches, world_size))
        self.position = 0  # index into this rank's batches of the next one to yield
        self._cache: Optional[tuple] = None

    def __len__(self) -> int:
        return len(self._batches)

    def state_dict(self) -> Dict[str, int]:
        """Where this stream is: restore with load_state_dict to resume exactly there."""
        return {"position": self.position, "rank": self.rank, "world_size": self.world_size, "total_batches": self.total_batches}

    def load_state_dict(self, state: Dict[str, int]) -> None:
        if (state["rank"], state["world_size"], state["total_batches"]) != (self.rank, self.world_size, self.total_batches):
            raise ValueError(f"state is for rank {state['rank']}/{state['world_size']} of {state['total_batches']} batches")
        self.position = state["position"]

    def _shard(self, batch: int) -> tuple:
        for shard in self.manifest["shards"]:
            if shard["first_batch"] <= batch < shard["first_batch"] + shard["batches"]:
                if self._cache and self._cache[0] is shard:
                    return self._cache
                path = os.path.join(self.root, shard["file"])
                if self.verify and _sha256(path) != shard["sha256"]:
                    raise SluiceIntegrityError(f"{path}: SHA-256 does not match the manifest; the shard is damaged — re-run sluice run")
                with open(path, "rb") as handle:
                    blob = lz4.frame.decompress(handle.read())
                self._cache = (shard, _tensors(blob, path))
                return self._cache
        raise IndexError(f"batch {batch} is not in any shard")

    def batch(self, batch: int) -> Dict[str, np.ndarray]:
        """Batch `batch` (a global index) as NumPy arrays."""
        shard, tensors = self._shard(batch)
        rows = slice((batch - shard["first_batch"]) * self.batch_size, (batch - shard["first_batch"] + 1) * self.batch_size)
        result = {name: array[rows] for name, array in tensors.items()}
        embedding = self.manifest.get("embedding") or {}
        if "embeddings" in result and embedding.get("dtype") == "bfloat16" and not self.raw_bfloat16:
            result["embeddings"] = (result["embeddings"].astype(np.uint32) << 16).view(np.float32)
        return result

    def __iter__(self) -> Iterator[Dict[str, np.ndarray]]:
        while self.position < len(self._batches):
            batch = self._batches[self.position]
            self.position += 1
            yield self.batch(batch)


try:  # PyTorch is optional.
    import torch
    from torch.utils.data import IterableDataset

    class SluiceIterableDataset(IterableDataset):
        """A torch IterableDataset over one rank's batches (each item is a whole batch of
        tensors), resumable mid-epoch with state_dict() / load_state_dict()."""

        def __init__(self, root: str, rank: int = 0, world_size: int = 1, verify: bool = True):
            super().__init__()
            self.stream = SluiceBatches(root, rank, world_size, verify, raw_bfloat16=True)

        def __len__(self) -> int:
            return len(self.stream)

        def state_dict(self) -> Dict[str, int]:
            return self.stream.state_dict()

        def load_state_dict(self, state: Dict[str, int]) -> None:
            self.stream.load_state_dict(state)

        def __iter__(self):
            bf16 = (self.stream.manifest.get("embedding") or {}).get("dtype") == "bfloat16"
            for batch in self.stream:
                # A copy per batch: the arrays view the read-only decompressed shard, and a
                # trainer may write into its tensors.
                item = {name: torch.from_numpy(np.array(array)) for name, array in batch.items()}
                if bf16 and "embeddings" in item:
                    item["embeddings"] = item["embeddings"].view(torch.bfloat16)
                yield item

except ImportError:  # pragma: no cover - exercised only without torch
    SluiceIterableDataset = None  # type: ignore[assignment,misc]
