"""companion.fast._buffers: large arrays are reused once nothing refers to them, never before,
and the pool stays within its byte limit.  (That the kernels' caches survive other calls is
tested end to end in test_fast.py.)"""

import numpy as np
import pytest

from companion.fast import _buffers

SHAPE = (100, 32, 64)  # 819,200 bytes in float32: pooled


@pytest.fixture(autouse=True)
def empty_pool():
    _buffers.clear()
    yield
    _buffers.clear()


def test_an_array_nobody_holds_is_handed_out_again():
    first = _buffers.empty(SHAPE, np.float32)
    address = first.ctypes.data
    del first
    again = _buffers.empty(SHAPE, np.float32)
    assert again.ctypes.data == address
    assert again.shape == SHAPE and again.dtype == np.float32 and again.flags.c_contiguous


@pytest.mark.parametrize("keep", [
    lambda a: a,
    lambda a: a[3],
    lambda a: a.reshape(-1)[10:20],
    lambda a: a.T[::2],
    lambda a: {"cache": [a[1:]]},
    lambda a: memoryview(a),
], ids=["array", "step", "slice of a reshape", "strided transpose", "nested in a cache",
        "memoryview"])
def test_an_array_still_referred_to_is_not_reused(keep):
    first = _buffers.empty(SHAPE, np.float32)
    address = first.ctypes.data
    holder = keep(first)
    del first
    second = _buffers.empty(SHAPE, np.float32)
    assert second.ctypes.data != address
    del holder


def test_shape_and_dtype_must_match():
    first = _buffers.empty(SHAPE, np.float32)
    address = first.ctypes.data
    del first
    assert _buffers.empty(SHAPE, np.float64).ctypes.data != address
    assert _buffers.empty((32, 100, 64), np.float32).ctypes.data != address


def test_small_arrays_are_not_pooled():
    _buffers.empty((4, 4), np.float64)
    assert _buffers._pooled_bytes == 0


def test_copy_is_an_equal_contiguous_array_of_its_own():
    source = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)[:, :, ::-1]
    copied = _buffers.copy(source)
    np.testing.assert_array_equal(copied, source)
    assert copied.flags.c_contiguous and not np.shares_memory(copied, source)


def test_the_pool_stays_within_its_limit_dropping_free_arrays_oldest_first(monkeypatch):
    nbytes = int(np.prod(SHAPE)) * 4
    monkeypatch.setattr(_buffers, "MAX_BYTES", 3 * nbytes)
    held = [_buffers.empty(SHAPE, np.float32) for _ in range(3)]
    assert _buffers._pooled_bytes == 3 * nbytes
    extra = _buffers.empty(SHAPE, np.float32)  # nothing free to drop: not pooled
    assert _buffers._pooled_bytes == 3 * nbytes and len(_buffers._pool) == 3
    del held[0], extra
    other = _buffers.empty((50, 32, 64), np.float32)  # needs room: the free one goes
    assert _buffers._pooled_bytes == 2 * nbytes + other.nbytes
    pooled = list(_buffers._pool.values())
    assert len(pooled) == 3 and all(any(a is b for b in pooled) for a in [*held, other])


def test_repeated_forward_and_backward_take_almost_no_page_faults():
    """What the pool is for: once warm, an LSTM forward + backward at the default size writes
    into arrays it has used before, so the kernel maps no new pages (without the reuse, about
    3,500 minor page faults a call on the course's machine)."""
    import resource

    from companion import lstm

    params = lstm.init_params(128, 128, seed=0, dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((100, 32, 128)).astype(np.float32)

    def call():
        outputs, _, cache = lstm.forward(x, params)
        lstm.backward(np.ones_like(outputs), cache)

    for _ in range(3):
        call()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        call()
    per_call = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5
    assert per_call < 100, f"{per_call:.0f} minor page faults per forward + backward"
