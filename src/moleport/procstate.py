"""Process-wide state changed only for the length of a block, and put back on exit (also on exceptions).

``torch_threads(n)``: torch's intra-op thread count; ``attributes(obj, NAME=value, ...)``: module or class
attributes such as PIL's ``Image.MAX_IMAGE_PIXELS`` / ``ImageFile.LOAD_TRUNCATED_IMAGES``. The working directory
has the standard library's :func:`contextlib.chdir`. The ExecuTorch threadpool lives with its runner
(``moleport.runtimes.executorch``), which puts the previous size back in ``close()``.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

_MISSING = object()


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[int]:
    """``torch.set_num_threads(n)`` inside the block (``None`` or 0: leave it), the previous count after.
    Yields the count in effect inside the block."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def attributes(obj: Any, **values: Any) -> Iterator[None]:
    """Set attributes of ``obj`` (a module, a class) inside the block; the previous values (or their absence)
    come back on exit."""
    saved = {name: getattr(obj, name, _MISSING) for name in values}
    try:
        for name, value in values.items():
            setattr(obj, name, value)
        yield
    finally:
        for name, value in saved.items():
            if value is _MISSING:
                with contextlib.suppress(AttributeError):
                    delattr(obj, name)
            else:
                setattr(obj, name, value)
