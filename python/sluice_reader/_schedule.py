"""Which samples a rank and a DataLoader worker read, in which order, and how far they got.

One epoch's *global order* is a permutation of the samples drawn from (seed, epoch) alone, or
the stream order. A *session* is the part of an epoch still to read — all of it at the epoch's
start, the rest after a resume — as ranges of global-order positions. The session is cut into
`world_size` equal contiguous pieces (rank r gets piece r: its I/O is its own piece only when
not shuffled); `drop_last` drops the few positions that do not divide, otherwise the short
ranks are padded with the epoch's first positions, as torch's DistributedSampler does. Inside a
rank, DataLoader worker w of n takes whole chunks of `chunk` samples, chunk k going to worker
k mod n — with `chunk` equal to the DataLoader's batch_size, the loader yields the rank's
samples in exactly the order of num_workers=0.

Progress is counted per worker. Because every rank has the same number of samples and the same
workers, ranks advance in lockstep, so one rank's counts say what *every* rank has read: a
resume with another world size or worker count takes the session, removes what all ranks read
and starts a new session on the rest, in global order — nothing read twice, nothing skipped.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

STATE_FORMAT = "sluice.dataset-state.v1"


def epoch_order(samples: int, shuffle: bool, seed: int, epoch: int) -> Optional[np.ndarray]:
    """The epoch's global order (None: the identity). NumPy's PCG64 from SeedSequence([seed,
    epoch]): the same on every rank, worker and machine, whatever else was drawn before."""
    if not shuffle:
        return None
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch]))).permutation(samples)


def _flat(remaining: Sequence[Sequence[int]]) -> np.ndarray:
    if not remaining:
        return np.zeros(0, np.int64)
    return np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in remaining])


def per_rank(total: int, world_size: int, drop_last: bool) -> int:
    return total // world_size if drop_last else -(-total // world_size)


def rank_positions(remaining, world_size: int, rank: int, drop_last: bool, samples: int) -> np.ndarray:
    """Global-order positions of rank `rank`'s piece of the session, padding included."""
    flat = _flat(remaining)
    length = per_rank(len(flat), world_size, drop_last)
    index = np.arange(rank * length, (rank + 1) * length, dtype=np.int64)
    out = np.empty(length, np.int64)
    real = index < len(flat)
    out[real] = flat[index[real]]
    # Padding: the epoch's first positions, as DistributedSampler repeats its first indices.
    out[~real] = (index[~real] - len(flat)) % max(1, samples)
    return out


def worker_mask(length: int, worker: int, workers: int, chunk: int) -> np.ndarray:
    return (np.arange(length, dtype=np.int64) // chunk) % workers == worker


def remaining_after(state: Dict) -> List[List[int]]:
    """The session of `state` less what every rank read (its per-worker counts), as ranges of
    global-order positions; padding and dropped positions are not carried over."""
    consumed = state["consumed"]
    if consumed is None:
        return [list(r) for r in state["remaining"]]
    if any(c is None for c in consumed):
        raise ValueError(
            "this state holds one DataLoader worker's progress only; merge the workers' states first "
            "with sluice_reader.dataset_state(loader.state_dict())"
        )
    flat = _flat(state["remaining"])
    world, workers, chunk = state["world_size"], len(consumed), state["chunk"]
    length = per_rank(len(flat), world, state["drop_last"])
    read = np.zeros(length, bool)
    owner = (np.arange(length) // chunk) % workers
    for worker, count in enumerate(consumed):
        read[np.flatnonzero(owner == worker)[:count]] = True
    keep = []
    for rank in range(world):
        index = np.arange(rank * length, (rank + 1) * length, dtype=np.int64)[~read]
        keep.append(index[index < len(flat)])
    positions = flat[np.sort(np.concatenate(keep))] if keep else np.zeros(0, np.int64)
    return ranges(positions)


def ranges(positions: np.ndarray) -> List[List[int]]:
    if len(positions) == 0:
        return []
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(positions)]])
    return [[int(positions[s]), int(positions[e - 1]) + 1] for s, e in zip(starts, ends)]


def merge(states: Sequence[Dict]) -> Dict:
    """One state from the states of one rank's DataLoader workers (each knows its own count)."""
    if not states:
        raise ValueError("no sluice dataset state found")
    merged = dict(states[0])
    consumed: List[Optional[int]] = list(merged["consumed"] or [])
    for state in states[1:]:
        same = {k: v for k, v in state.items() if k != "consumed"} == {k: v for k, v in merged.items() if k != "consumed"}
        if not same:
            raise ValueError("these states are from different datasets, epochs or sessions")
        for worker, count in enumerate(state["consumed"] or []):
            if count is not None:
                consumed[worker] = count
    merged["consumed"] = consumed
    return merged


def find_states(tree) -> List[Dict]:
    """Every sluice dataset state inside a (StatefulDataLoader) state dict, in worker order."""
    found: List[Tuple[str, Dict]] = []

    def walk(node, path: str) -> None:
        if isinstance(node, dict):
            if node.get("format") == STATE_FORMAT:
                found.append((path, node))
                return
            for key in sorted(node, key=str):
                walk(node[key], f"{path}/{key}")
        elif isinstance(node, (list, tuple)):
            for index, item in enumerate(node):
                walk(item, f"{path}/{index}")

    walk(tree, "")
    return [state for _, state in found]
