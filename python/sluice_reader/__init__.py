"""Read a Sluice output directory in a trainer: verified shards, windows or prepared batches
as NumPy arrays (PyTorch tensors through a DataLoader), equal disjoint shares per
data-parallel rank and DataLoader worker, shuffles per epoch, exact mid-epoch resume.

    from sluice_reader import SluiceDataset, collate_windows
    from torch.utils.data import DataLoader
    ds = SluiceDataset("out/corpus", shuffle=True, seed=0)     # rank/world from torch.distributed
    loader = DataLoader(ds, batch_size=8, num_workers=2, collate_fn=collate_windows)
    for epoch in range(3):
        ds.set_epoch(epoch)
        for batch in loader:                    # inputs, targets: int64 [8, max_length]
            ...

`SluiceBatches` yields the batches the config prepared, in their book-exact order.
Needs numpy and lz4 (python-lz4); torch is optional. docs/TRAINING.md has the details.
"""
from ._dataset import SluiceBatches, SluiceDataset, collate_windows, dataset_state
from ._manifest import SluiceIntegrityError, SluicePartialInputWarning, open_manifest

__version__ = "0.2.0"

#: Kept for earlier code: SluiceBatches is itself a torch IterableDataset when torch is installed.
SluiceIterableDataset = SluiceBatches

__all__ = ["SluiceDataset", "SluiceBatches", "SluiceIterableDataset", "SluiceIntegrityError", "SluicePartialInputWarning", "collate_windows", "dataset_state", "open_manifest", "__version__"]
