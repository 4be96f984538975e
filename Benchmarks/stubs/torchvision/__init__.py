"""A stand-in for torchvision, for the reader benchmark only.

mosaic streaming imports torchvision's dataset classes when its package is imported (for its
image datasets); PyPI has no CPU torchvision wheel for torch 2.13+cpu, and the CUDA ones do not
load against it. Token data never touches these names: using one raises."""


def _absent(*args, **kwargs):
    raise RuntimeError("torchvision is not installed: this stand-in only lets mosaic streaming import")
