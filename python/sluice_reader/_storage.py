"""Random access into Sluice's LZ4 frames: a frame of independent blocks is indexed by its
block headers once, then any byte range is read by decompressing only the blocks that hold it.
Token shards use 64 KiB blocks (one window costs at most two small decompressions); batch
shards use 4 MiB blocks."""
from __future__ import annotations

import bisect
import hashlib
import json
import os
import struct
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Tuple

import lz4.block
import numpy as np

from ._manifest import SluiceIntegrityError, damaged

_MAGIC = 0x184D2204
_BLOCK_SIZES = {4: 1 << 16, 5: 1 << 18, 6: 1 << 20, 7: 1 << 22}


class BlockCache:
    """Decompressed blocks, least recently used first out, at most `max_bytes` for a whole
    dataset (per process): random access costs one 64 KiB decompression at most, memory stays
    bounded whatever the number of shards."""

    def __init__(self, max_bytes: int = 32 << 20) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._blocks: "OrderedDict[tuple, bytes]" = OrderedDict()

    def get(self, key):
        block = self._blocks.get(key)
        if block is not None:
            self._blocks.move_to_end(key)
        return block

    def put(self, key, block: bytes) -> None:
        self._blocks[key] = block
        self.bytes += len(block)
        while self.bytes > self.max_bytes and len(self._blocks) > 1:
            _, old = self._blocks.popitem(last=False)
            self.bytes -= len(old)

    def __getstate__(self):
        return {"max_bytes": self.max_bytes}

    def __setstate__(self, state):
        self.__init__(state["max_bytes"])


class IOStats:
    """What this process read: shards hashed, compressed bytes read, blocks decompressed."""

    def __init__(self) -> None:
        self.shards_verified = 0
        self.bytes_read = 0
        self.blocks_decompressed = 0

    def as_dict(self) -> Dict[str, int]:
        return {"shards_verified": self.shards_verified, "bytes_read": self.bytes_read, "blocks_decompressed": self.blocks_decompressed}


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


class FrameFile:
    """One LZ4 frame file with independent blocks, read block by block (`pread`), verified
    against its manifest SHA-256 before the first block when asked to."""

    def __init__(self, root: str, entry: dict, stats: IOStats, cache: BlockCache) -> None:
        self.root = root
        self.path = os.path.join(root, entry["file"])
        self.sha256 = entry["sha256"]
        self.size = entry["bytes"]
        self.content_bytes = entry["content_bytes"]
        self.stats = stats
        self.verified = False
        self._blocks: Optional[List[Tuple[int, int, bool]]] = None  # (offset, size, stored)
        self._block_size = 0
        self._fd: Optional[int] = None
        self._pid = -1
        self._cache = cache
        self._key = entry["file"]

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_fd"], state["_pid"] = None, -1
        return state

    def verify(self) -> None:
        """Hashes the whole file once (the SHA-256 the manifest holds)."""
        if self.verified:
            return
        try:
            actual_size = os.path.getsize(self.path)
        except OSError as error:
            raise SluiceIntegrityError(f"{self.path}: cannot read ({error.strerror}); run `sluice verify {self.root}`") from error
        if actual_size != self.size:
            raise SluiceIntegrityError(
                f"{self.path}: {actual_size} bytes, the manifest says {self.size} — the shard is truncated or was replaced; "
                f"run `sluice verify {self.root}`, then `sluice run` again"
            )
        if sha256_file(self.path) != self.sha256:
            raise damaged(self.path, self.root)
        self.stats.shards_verified += 1
        self.stats.bytes_read += self.size
        self.verified = True

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDONLY)
            self._pid = os.getpid()
        return self._fd

    def _pread(self, count: int, offset: int) -> bytes:
        data = os.pread(self._descriptor(), count, offset)
        if len(data) != count:
            raise SluiceIntegrityError(f"{self.path}: ends at byte {offset + len(data)}, inside an LZ4 block; run `sluice verify {self.root}`")
        self.stats.bytes_read += count
        return data

    def _index(self) -> None:
        header = self._pread(min(19, self.size), 0)
        if len(header) < 7 or struct.unpack_from("<I", header)[0] != _MAGIC:
            raise SluiceIntegrityError(f"{self.path}: not an LZ4 frame; run `sluice verify {self.root}`")
        flags, descriptor = header[4], header[5]
        if not flags & 0x20:
            raise SluiceIntegrityError(f"{self.path}: LZ4 blocks are linked, not independent; this file was not written by Sluice")
        block_checksum = bool(flags & 0x10)
        offset = 7 + (8 if flags & 0x08 else 0) + (4 if flags & 0x01 else 0)
        self._block_size = _BLOCK_SIZES.get((descriptor >> 4) & 7, 0)
        blocks = []
        while True:
            (word,) = struct.unpack("<I", self._pread(4, offset))
            if word == 0:
                break
            size, stored = word & 0x7FFFFFFF, bool(word & 0x80000000)
            blocks.append((offset + 4, size, stored))
            offset += 4 + size + (4 if block_checksum else 0)
            if offset > self.size:
                raise SluiceIntegrityError(f"{self.path}: an LZ4 block runs past the end of the file; run `sluice verify {self.root}`")
        self._blocks = blocks

    def block(self, index: int) -> bytes:
        key = (self._key, index)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if self._blocks is None:
            self._index()
        offset, size, stored = self._blocks[index]
        data = self._pread(size, offset)
        if not stored:
            expected = min(self._block_size, self.content_bytes - index * self._block_size)
            try:
                data = lz4.block.decompress(data, uncompressed_size=expected)
            except lz4.block.LZ4BlockError as error:
                raise SluiceIntegrityError(f"{self.path}: block {index} does not decompress ({error}); run `sluice verify {self.root}`") from error
            self.stats.blocks_decompressed += 1
        self._cache.put(key, data)
        return data

    def read(self, start: int, length: int) -> bytes:
        """Content bytes `start ..< start + length`."""
        if self._blocks is None:
            self._index()
        size = self._block_size
        first, last = start // size, (start + length - 1) // size
        if first == last:
            base = first * size
            return self.block(first)[start - base : start - base + length]
        pieces = []
        for index in range(first, last + 1):
            block = self.block(index)
            base = index * size
            pieces.append(block[max(0, start - base) : min(size, start + length - base)])
        return b"".join(pieces)


def verify_all(files: List[FrameFile]) -> None:
    """Every file hashed, in parallel (hashlib releases the GIL), before anything is read."""
    pending = [f for f in files if not f.verified]
    if not pending:
        return
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1, len(pending))) as pool:
        for future in [pool.submit(f.verify) for f in pending]:
            future.result()


_NUMPY = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I32": np.int32, "I64": np.int64}


class BatchShardStore:
    """`shards_kind` "batches": windows are the rows of the shards, in the prepared order."""

    def __init__(self, root: str, manifest: dict, stats: IOStats, cache_bytes: int = 32 << 20) -> None:
        self.root = root
        cache = BlockCache(cache_bytes)
        self.files = [FrameFile(root, entry, stats, cache) for entry in manifest["shards"]]
        self._first_rows = np.cumsum([0] + [entry["windows"] for entry in manifest["shards"]]).tolist()
        self.row_count = self._first_rows[-1]
        self.max_length = manifest["window"]["max_length"]
        self._layouts: Dict[int, dict] = {}

    def _layout(self, shard: int) -> dict:
        layout = self._layouts.get(shard)
        if layout is None:
            file = self.files[shard]
            (length,) = struct.unpack("<Q", file.read(0, 8))
            header = json.loads(file.read(8, length))
            header.pop("__metadata__", None)
            layout = {}
            for name, info in header.items():
                kind = _NUMPY.get(info["dtype"])
                if kind is None:
                    raise SluiceIntegrityError(f"{file.path}: tensor {name} has unsupported dtype {info['dtype']}")
                shape = info["shape"]
                row_items = int(np.prod(shape[1:])) if len(shape) > 1 else 1
                layout[name] = (8 + length + info["data_offsets"][0], kind, shape[1:], row_items * np.dtype(kind).itemsize)
            self._layouts[shard] = layout
        return layout

    def rows(self, index: int, count: int, verify) -> Dict[str, np.ndarray]:
        """Rows `index ..< index + count` (within one shard: shards hold whole batches), one
        contiguous read per tensor."""
        shard = bisect.bisect_right(self._first_rows, index) - 1
        file = self.files[shard]
        if not file.verified:
            verify(file)
        row = index - self._first_rows[shard]
        result = {}
        for name, (base, kind, shape, row_bytes) in self._layout(shard).items():
            data = file.read(base + row * row_bytes, count * row_bytes)
            result[name] = np.frombuffer(data, kind).reshape([count] + shape)
        return result

    def row(self, index: int, verify) -> Dict[str, np.ndarray]:
        return {name: array[0] for name, array in self.rows(index, 1, verify).items()}


class TokenShardStore:
    """`shards_kind` "tokens": the token stream in 64 KiB LZ4 blocks, plus the document index."""

    def __init__(self, root: str, manifest: dict, stats: IOStats, cache_bytes: int = 32 << 20) -> None:
        stream = manifest["token_stream"]
        self.root = root
        self.dtype = np.dtype("<u2") if stream["dtype"] == "uint16" else np.dtype("<u4")
        cache = BlockCache(cache_bytes)
        self.files = [FrameFile(root, entry, stats, cache) for entry in manifest["shards"]]
        self.length = manifest["totals"]["tokens"]
        self.separator = manifest["tokenizer"]["document_separator"]
        self._firsts = [entry["first_token"] for entry in manifest["shards"]] + [manifest["totals"]["tokens"]]
        self._documents_entry = stream["documents"]
        self._documents: Optional[np.ndarray] = None

    def documents(self) -> Tuple[np.ndarray, np.ndarray]:
        """Start and length (separator excluded) of every document, from `documents.idx`."""
        if self._documents is None:
            entry = self._documents_entry
            path = os.path.join(self.root, entry["file"])
            with open(path, "rb") as handle:
                data = handle.read()
            if len(data) != entry["bytes"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise damaged(path, self.root, "document index")
            starts = np.frombuffer(data, "<u8").astype(np.int64)
            ends = np.append(starts[1:] - (0 if self.separator is None else 1), self.length)
            self._documents = np.stack([starts, ends - starts])
        return self._documents[0], self._documents[1]

    def ids(self, start: int, count: int, verify) -> np.ndarray:
        """Ids `start ..< start + count` of the stream (a window within one shard, mostly)."""
        width = self.dtype.itemsize
        firsts = self._firsts
        shard = bisect.bisect_right(firsts, start) - 1
        pieces = []
        position, end = start, start + count
        while position < end:
            file = self.files[shard]
            if not file.verified:
                verify(file)
            stop = min(end, firsts[shard + 1])
            pieces.append(file.read((position - firsts[shard]) * width, (stop - position) * width))
            position, shard = stop, shard + 1
        return np.frombuffer(pieces[0] if len(pieces) == 1 else b"".join(pieces), self.dtype)
