from .. import _absent as to_tensor  # noqa: F401
