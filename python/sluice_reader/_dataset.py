"""SluiceDataset (windows) and SluiceBatches (the prepared batches): one epoch of this rank's
samples per iteration, DataLoader workers and DDP ranks split without duplicates, exact
mid-epoch state. The schedule itself is in _schedule.py."""
from __future__ import annotations

import copy
import os
import warnings
from typing import Any, Dict, Optional

import numpy as np

from . import _schedule
from ._manifest import open_manifest
from ._storage import BatchShardStore, FrameFile, IOStats, TokenShardStore, verify_all

try:  # PyTorch is optional: with it the datasets are IterableDatasets a DataLoader understands.
    import torch
    from torch.utils.data import IterableDataset as _Base
    from torch.utils.data import get_worker_info as _worker_info
except ImportError:  # pragma: no cover - exercised only without torch
    torch = None
    _Base = object

    def _worker_info():
        return None


_VERIFY = ("full", "lazy", "none")


def _distributed(rank: Optional[int], world_size: Optional[int]):
    """Explicit arguments win; else torch.distributed when it is initialised; else 0 of 1."""
    if rank is None and world_size is None and torch is not None:
        distributed = torch.distributed
        if distributed.is_available() and distributed.is_initialized():
            return distributed.get_rank(), distributed.get_world_size()
    if world_size is None:
        world_size = 1 if rank in (None, 0) else None
    if rank is None:
        rank = 0
    if world_size is None or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} needs a world_size above it (got world_size={world_size})")
    return rank, world_size


class _Scheduled(_Base):
    """An epoch of samples, split by rank and DataLoader worker; `_item(g)` reads sample g."""

    def _schedule(self, samples: int, shuffle: bool, seed: int, rank, world_size, drop_last: bool, batch_size) -> None:
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.samples = samples
        self.shuffle = bool(shuffle)
        seed = int(seed)
        if not -2**63 <= seed < 2**64:
            raise ValueError(f"seed must be from -2**63 to 2**64-1 (torch.manual_seed's range), got {seed}")
        self.seed = seed & (2**64 - 1)  # torch's two's complement: -5 and 2**64-5 are one seed
        self.rank, self.world_size = _distributed(rank, world_size)
        self.drop_last = bool(drop_last)
        self.chunk = int(batch_size or 1)
        self._order_cache = None
        self._replayed = False
        self._progress = self._fresh(0)

    def _fresh(self, epoch: int) -> Dict[str, Any]:
        return {
            "format": _schedule.STATE_FORMAT,
            "samples": self.samples,
            "shuffle": self.shuffle,
            "seed": self.seed,
            "epoch": int(epoch),
            "remaining": [[0, self.samples]] if self.samples else [],
            "world_size": self.world_size,
            "drop_last": self.drop_last,
            "chunk": self.chunk,
            "consumed": None,
        }

    # -- epochs and state ---------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self._progress["epoch"]

    def set_epoch(self, epoch: int) -> None:
        """Start epoch `epoch` (its own shuffle). Keeps a loaded mid-epoch state of that epoch."""
        if epoch != self._progress["epoch"]:
            self._progress = self._fresh(epoch)
            self._order_cache = None

    def state_dict(self, samples_seen: Optional[int] = None) -> Dict[str, Any]:
        """Where this rank is in the epoch, picklable and JSON-able. In-process iteration and
        torchdata's StatefulDataLoader (which calls this in each worker) need no argument. With
        a plain DataLoader and workers the main process's copy never iterates: pass
        `samples_seen`, the samples this rank's trainer took since the epoch started (or the
        last load_state_dict), and give this dataset the loader's `batch_size` so that the
        loader yields samples in order."""
        state = copy.deepcopy(self._progress)
        info = _worker_info()
        if info is not None and state["consumed"] is not None:
            # A worker knows its own progress only; dataset_state() merges the workers' states.
            state["consumed"] = [c if w == info.id else None for w, c in enumerate(state["consumed"])]
        if samples_seen is None:
            return state
        if not self._same_cut(state) or any(state["consumed"] or []):
            state = dict(state, remaining=_schedule.remaining_after(state), world_size=self.world_size,
                         drop_last=self.drop_last, chunk=self.chunk, consumed=None)
        length = _schedule.per_rank(sum(b - a for a, b in state["remaining"]), self.world_size, self.drop_last)
        if not 0 <= samples_seen <= length:
            raise ValueError(f"samples_seen {samples_seen} is outside this rank's {length} samples")
        state["consumed"] = [int(samples_seen)]
        return state

    def _same_cut(self, progress: Dict[str, Any]) -> bool:
        return (progress["world_size"] == self.world_size and progress["drop_last"] == self.drop_last
                and progress["chunk"] == self.chunk)

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Resume from `state` — of this rank, or of any rank of a run with another world size
        or worker count (it continues the global order: nothing repeated, nothing skipped)."""
        if state.get("format") != _schedule.STATE_FORMAT:
            raise ValueError("not a sluice dataset state (use sluice_reader.dataset_state(loader.state_dict()))")
        for key in ("samples", "shuffle", "seed"):
            if state[key] != getattr(self, key):
                raise ValueError(f"this state is for another dataset: {key} {state[key]!r}, this one has {getattr(self, key)!r}")
        self._progress = copy.deepcopy(state)
        self._order_cache = None

    def _resolve(self, workers: int) -> None:
        """Makes the session this process reads: the loaded one, or — when it was cut for another
        world size, worker count or chunk — a new one on what it left."""
        progress = self._progress
        consumed = progress["consumed"]
        if self._same_cut(progress) and (consumed is None or len(consumed) == workers or not any(consumed)):
            if consumed is None or len(consumed) != workers:
                progress["consumed"] = [0] * workers
            return
        self._progress = dict(progress, remaining=_schedule.remaining_after(progress), world_size=self.world_size,
                              drop_last=self.drop_last, chunk=self.chunk, consumed=[0] * workers)

    def _finished(self) -> bool:
        """Whether every worker of the session read its whole share."""
        progress = self._progress
        consumed = progress["consumed"]
        if not consumed or any(c is None for c in consumed) or not any(consumed):
            return False
        total = sum(b - a for a, b in progress["remaining"])
        length = _schedule.per_rank(total, progress["world_size"], progress["drop_last"])
        owner = (np.arange(length) // progress["chunk"]) % len(consumed)
        return all(int(np.count_nonzero(owner == w)) == c for w, c in enumerate(consumed))

    def _positions(self) -> np.ndarray:
        """This rank's session, as iteration will cut it."""
        progress = self._progress
        consumed = progress["consumed"]
        if self._same_cut(progress):
            remaining = progress["remaining"]
        else:
            remaining = _schedule.remaining_after(progress)
        return _schedule.rank_positions(remaining, self.world_size, self.rank, self.drop_last, self.samples)

    def _order(self) -> np.ndarray:
        if self._order_cache is None or self._order_cache[0] != self.epoch:
            self._order_cache = (self.epoch, _schedule.epoch_order(self.samples, True, self.seed, self.epoch))
        return self._order_cache[1]

    def _global(self, position: int) -> int:
        return int(self._order()[position]) if self.shuffle else position

    # -- reading ------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Samples this rank reads in this epoch (the same on every rank)."""
        return len(self._positions())

    def __getitem__(self, i: int):
        """Sample i of this rank's epoch, in the order iteration yields them (workers aside)."""
        positions = self._positions()
        if not -len(positions) <= i < len(positions):
            raise IndexError(f"index {i} is outside this rank's {len(positions)} samples")
        return self._item(self._global(int(positions[i])))

    def __iter__(self):
        info = _worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if self._finished():
            # A finished epoch iterated again (in this process or in fresh DataLoader workers):
            # the same epoch once more; set_epoch reshuffles.
            if self.shuffle and info is None and not self._replayed:
                warnings.warn(f"epoch {self.epoch} again in the same order; call set_epoch(epoch) before each epoch to reshuffle", stacklevel=2)
                self._replayed = True
            self._progress = self._fresh(self.epoch)
        self._resolve(workers)
        progress = self._progress
        positions = _schedule.rank_positions(progress["remaining"], self.world_size, self.rank, self.drop_last, self.samples)
        mine = positions[_schedule.worker_mask(len(positions), worker, workers, self.chunk)]
        start = progress["consumed"][worker]
        if start is None:
            raise ValueError(f"the loaded state has no progress for DataLoader worker {worker}")
        order = self._order() if self.shuffle else None
        samples = (mine[start:] if order is None else order[mine[start:]]).tolist()
        consumed = progress["consumed"]
        for j, g in enumerate(samples, start + 1):
            item = self._item(g)
            consumed[worker] = j
            yield item

    def io_stats(self) -> Dict[str, int]:
        """What this process read so far: shards verified, bytes read, LZ4 blocks decompressed."""
        return self._stats.as_dict()

    def _verify_file(self, file: FrameFile) -> None:
        if self.verify == "lazy":
            file.verify()

    def _start_verification(self, verify, files) -> None:
        if verify is True:
            verify = "lazy"
        elif verify is False:
            verify = "none"
        if verify not in _VERIFY:
            raise ValueError(f"verify must be one of {_VERIFY}, got {verify!r}")
        self.verify = verify
        if verify == "full":
            verify_all(files)


class SluiceDataset(_Scheduled):
    """Training windows of a Sluice output, one dict per sample: `inputs` and `targets` (int64
    [max_length]), `embeddings` where materialized, and `index` (the window's place in stream
    order). Iterating yields one epoch of this rank's samples; a DataLoader does the batching.

    - `shuffle`/`seed`: each epoch's order is a permutation drawn from (seed, epoch) alone; call
      `set_epoch(e)` before each epoch, as with DistributedSampler. Seeds are torch's range
      (-2**63 to 2**64-1, negative ones as their two's complement: -5 is 2**64-5).
    - `split`: "train", or "validation" when the config's `split` section sent documents there.
    - `rank`/`world_size`: explicit, or torch.distributed's when initialised. Every rank gets the
      same number of samples: `drop_last=True` drops the remainder, otherwise the short ranks
      repeat the epoch's first samples (DistributedSampler's rule).
    - `batch_size` (optional, the DataLoader's): workers then take whole batches in turn, so a
      loader yields the same batches in the same order for any num_workers.
    - `verify`: "full" hashes every shard before the first sample (in parallel); "lazy" each
      shard before its first use in this process; "none" trusts the files.
    - `max_length`/`stride` (token shards only): cut windows of any size at read time;
      the defaults are the config's window section.
    - `cache_bytes`: decompressed LZ4 blocks kept per process (default 32 MiB); a shuffled
      epoch over more data than this decompresses one 64 KiB block per window.
    - `id_dtype`: int64 (default: what embedding lookups and cross_entropy take), or int32 /
      uint16 to move 2–4× fewer bytes from DataLoader workers (cast on the device).
    """

    def __init__(self, root: str, *, split: str = "train", shuffle: bool = False, seed: int = 0,
                 rank: Optional[int] = None, world_size: Optional[int] = None, verify="lazy",
                 drop_last: bool = False, batch_size: Optional[int] = None,
                 max_length: Optional[int] = None, stride: Optional[int] = None, raw_bfloat16: bool = False,
                 cache_bytes: int = 32 << 20, id_dtype="int64"):
        super().__init__()
        self.root = str(root)
        self.manifest = _split_view(open_manifest(self.root), split, self.root)
        self.split = split
        self.kind = self.manifest.get("shards_kind", "batches")
        self.id_dtype = np.dtype(id_dtype)
        if self.id_dtype not in (np.dtype(np.int64), np.dtype(np.int32), np.dtype(np.uint16)):
            raise ValueError(f"id_dtype must be int64, int32 or uint16, got {id_dtype!r}")
        upper = self.manifest["tokenizer"]["id_upper_bound"]
        if self.id_dtype == np.uint16 and upper > 65536 or self.id_dtype == np.int32 and upper > 2**31:
            raise ValueError(f"id_dtype {self.id_dtype} cannot hold this tokenizer's ids (up to {upper - 1})")
        window = self.manifest["window"]
        self._stats = IOStats()
        self.raw_bfloat16 = raw_bfloat16
        self._bfloat16 = (self.manifest.get("embedding") or {}).get("dtype") == "bfloat16"
        if self.kind == "tokens":
            self._store = TokenShardStore(self.root, self.manifest, self._stats, cache_bytes)
            self.max_length = int(max_length or window["max_length"])
            self.stride = int(stride or window["stride"])
            if self.max_length < 1 or self.stride < 1:
                raise ValueError("max_length and stride must be at least 1")
            self.cross_document = window.get("cross_document", True)
            samples = self._plan_windows()
        else:
            for name, value in (("max_length", max_length), ("stride", stride)):
                if value is not None and value != window[name]:
                    raise ValueError(
                        f"{self.root} holds batch shards with {name} {window[name]}, fixed when they were made; "
                        f"write shards.kind \"tokens\" to choose windows at read time"
                    )
            self._store = BatchShardStore(self.root, self.manifest, self._stats, cache_bytes)
            self.max_length, self.stride = window["max_length"], window["stride"]
            samples = self._store.row_count
        self._start_verification(verify, self._store.files)
        self._schedule(samples, shuffle, seed, rank, world_size, drop_last, batch_size)

    def _plan_windows(self) -> int:
        """GPTDatasetV1's windows: a start at every stride while start < length - max_length,
        over the whole stream or (cross_document false) each document alone."""
        length, stride = self.max_length, self.stride
        if self.cross_document:
            self._document_starts = None
            span = self._store.length - length
            return max(0, -(-span // stride))
        starts, lengths = self._store.documents()
        counts = np.maximum(0, -(-(lengths - length) // stride))
        self._document_starts = starts
        self._first_window = np.concatenate([[0], np.cumsum(counts)])
        return int(self._first_window[-1])

    def window_start(self, g: int) -> int:
        """Where window g (stream order) starts in the token stream."""
        if self._document_starts is None:
            return g * self.stride
        document = int(np.searchsorted(self._first_window, g, side="right") - 1)
        return int(self._document_starts[document]) + (g - int(self._first_window[document])) * self.stride

    def _item(self, g: int) -> Dict[str, Any]:
        if self.kind == "tokens":
            start = g * self.stride if self._document_starts is None else self.window_start(g)
            ids = self._store.ids(start, self.max_length + 1, self._verify_file).astype(self.id_dtype)
            return {"inputs": ids[:-1], "targets": ids[1:], "index": g}
        row = self._store.row(g, self._verify_file)
        item = {"inputs": row["inputs"].astype(self.id_dtype), "targets": row["targets"].astype(self.id_dtype), "index": g}
        if "embeddings" in row:
            embeddings = row["embeddings"]
            item["embeddings"] = _embeddings(embeddings, self._bfloat16 and not self.raw_bfloat16)
        return item


def _embeddings(values: np.ndarray, widen_bfloat16: bool) -> np.ndarray:
    """Embeddings as a writable array: bfloat16 bits (NumPy has no bfloat16) widened to the
    float32 they stand for, exactly, unless the caller asked for the raw bits."""
    return (values.astype(np.uint32) << 16).view(np.float32) if widen_bfloat16 else np.array(values)


def _split_view(manifest: Dict[str, Any], split: str, root: str) -> Dict[str, Any]:
    """The manifest as one split sees it: the validation split has its own totals, token
    stream and shards (`splits.validation`); everything else is shared."""
    if split == "train":
        return manifest
    if split != "validation":
        raise ValueError(f"split must be \"train\" or \"validation\", got {split!r}")
    part = (manifest.get("splits") or {}).get("validation")
    if part is None:
        raise ValueError(
            f"{root} has no validation split; add \"split\": {{\"validation_fraction\": 0.01}} to its config and run again"
        )
    view = dict(manifest)
    view.update(part)
    return view


class SluiceBatches(_Scheduled):
    """The prepared batches (`shards_kind` "batches") in the book-exact order of the config's
    window section, one dict of NumPy arrays per batch (`inputs`/`targets` int32
    [batch_size, max_length], `embeddings`). Rank r of world_size gets an equal contiguous run
    of batches (see SluiceDataset for padding, workers and state). With PyTorch it is an
    IterableDataset: use DataLoader(batches, batch_size=None)."""

    def __init__(self, root: str, rank: Optional[int] = None, world_size: Optional[int] = None, verify="lazy",
                 raw_bfloat16: bool = False, *, split: str = "train", shuffle: bool = False, seed: int = 0,
                 drop_last: bool = False):
        super().__init__()
        self.root = str(root)
        self.manifest = _split_view(open_manifest(self.root), split, self.root)
        if self.manifest.get("shards_kind", "batches") != "batches":
            raise ValueError(f"{self.root} holds the token stream, not batches; read it with SluiceDataset")
        self._stats = IOStats()
        self.raw_bfloat16 = raw_bfloat16
        self._bfloat16 = (self.manifest.get("embedding") or {}).get("dtype") == "bfloat16"
        self._store = BatchShardStore(self.root, self.manifest, self._stats)
        self.batch_size = self.manifest["window"]["batch_size"]
        self.total_batches = self.manifest["totals"]["batches"]
        self._start_verification(verify, self._store.files)
        self._schedule(self.total_batches, shuffle, seed, rank, world_size, drop_last, None)

    def batch(self, k: int) -> Dict[str, np.ndarray]:
        """Batch k of the output (a global index)."""
        if not 0 <= k < self.total_batches:
            raise IndexError(f"batch {k} does not exist; {self.root} has batches 0 ..< {self.total_batches}")
        first = k * self.batch_size
        result = self._store.rows(first, min(self.batch_size, self._store.row_count - first), self._verify_file)
        if "embeddings" in result:
            result["embeddings"] = _embeddings(result["embeddings"], self._bfloat16 and not self.raw_bfloat16)
        return result

    _item = batch


def collate_windows(samples):
    """A DataLoader `collate_fn` for SluiceDataset: the batch's windows as one [batch,
    max_length + 1] tensor with `inputs` and `targets` as views of it, and `index`. The same
    values as torch's default collate, but one tensor instead of two to build and — with
    workers — to send to the main process (about 1.8× the batches per second with 2 workers
    on the reader benchmark). Samples that are not token windows (batch-shard rows, embeddings)
    fall back to the default collate."""
    from torch.utils.data import default_collate

    first = samples[0]["inputs"]
    base = first.base
    if base is None or base.shape != (first.shape[0] + 1,) or "embeddings" in samples[0]:
        return default_collate(samples)
    blocks = torch.from_numpy(np.stack([sample["inputs"].base for sample in samples]))
    return {"inputs": blocks[:, :-1], "targets": blocks[:, 1:], "index": torch.tensor([s["index"] for s in samples])}


def dataset_state(loader_state: Dict[str, Any]) -> Dict[str, Any]:
    """The dataset state inside a StatefulDataLoader's `state_dict()` — its workers' progress
    merged — for `load_state_dict` on a dataset of another world size or worker count."""
    return _schedule.merge(_schedule.find_states(loader_state))
