"""Reused arrays for the fast kernels (private).

A fresh large NumPy array costs more than its arithmetic suggests: glibc serves big requests
with ``mmap`` and gives them back with ``munmap`` when they are freed, so the next call's array
starts as untouched pages and the kernel takes one page fault per 4 KiB the first time each is
written (about 3,500 faults per forward and backward of the LSTM at ``T=100, B=32, H=128``,
a tenth to a quarter of its time on the course's machine).  The kernels
therefore take their large arrays from :func:`empty`, which hands back an array of the same
shape and dtype that an earlier call made, once nothing refers to it any more.

"Nothing refers to it" is read from CPython's reference count: the pool holds each array once,
and every view NumPy makes of it (``a[t]``, ``a.reshape(...)``, ``a.T``, a slice of a slice)
keeps a reference to it as its ``base``.  So an array whose count is the pool's own is one no
cache, output, view or gradient still uses, and writing into it cannot change anything a caller
holds.  A cache kept for a later ``backward`` keeps its arrays; they are simply not reused until
it is gone.

Only arrays of at least :data:`MIN_BYTES` are pooled (small ones come from malloc's free lists
without faults), and the pool holds at most :data:`MAX_BYTES` in all: when a new array would
exceed that, free arrays are dropped oldest first, and if that is not enough the new array is
not pooled.
"""

from __future__ import annotations

import math
import sys
import threading
from collections import OrderedDict

import numpy as np

MIN_BYTES = 64 * 1024
MAX_BYTES = 128 * 1024 * 1024

_pool: OrderedDict[int, np.ndarray] = OrderedDict()  # id -> array, oldest first
_pooled_bytes = 0
_lock = threading.Lock()


def empty(shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` and ``dtype`` (like ``np.empty``)."""
    dtype = np.dtype(dtype)
    shape = tuple(shape)
    nbytes = dtype.itemsize * math.prod(shape)
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype)
    with _lock:
        for key in list(_pool):
            candidate = _pool[key]
            fits = candidate.shape == shape and candidate.dtype == dtype
            del candidate  # a reference of our own would hide whether others hold it
            if fits and _is_free(_pool, key):
                _pool.move_to_end(key)
                return _pool[key]
        return _new(shape, dtype, nbytes)


def _references(pool, key) -> int:
    array = pool[key]
    return sys.getrefcount(array)  # counts pool, ``array`` and getrefcount's own argument


_FREE_REFCOUNT = _references({0: np.empty(1)}, 0)  # what it reads for an array only a pool holds


def _is_free(pool, key) -> bool:
    return _references(pool, key) == _FREE_REFCOUNT


def _new(shape, dtype, nbytes) -> np.ndarray:
    global _pooled_bytes
    for key in list(_pool):  # drop free arrays, oldest first, until the new one fits
        if _pooled_bytes + nbytes <= MAX_BYTES:
            break
        if _is_free(_pool, key):
            _pooled_bytes -= _pool.pop(key).nbytes
    array = np.empty(shape, dtype)
    if _pooled_bytes + nbytes <= MAX_BYTES:
        _pool[id(array)] = array
        _pooled_bytes += nbytes
    return array


def clear() -> None:
    """Forget every pooled array (those still in use stay valid: they are only no longer reused)."""
    global _pooled_bytes
    with _lock:
        _pool.clear()
        _pooled_bytes = 0


def copy(array) -> np.ndarray:
    """A C-contiguous copy of ``array`` in a reused array (like ``array.copy()``)."""
    out = empty(array.shape, array.dtype)
    np.copyto(out, array)
    return out
