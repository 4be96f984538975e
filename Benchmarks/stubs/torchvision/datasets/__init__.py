from .. import _absent


class VisionDataset:
    def __init__(self, *args, **kwargs):
        _absent()


class CIFAR10(VisionDataset):
    pass
