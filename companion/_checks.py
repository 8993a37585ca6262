"""Input validation shared by the cells (private).

Every error is a ``ValueError`` whose message names the argument, the expected shape (with the
sizes the other arguments imply) and what was given, e.g.::

    x must have shape (T, B, D=4) (time-major), got (3, 4)
    h0 must have shape (B=3, H=5), got (2, 5)
    params['weight_hh'] must have shape (4*H, H), got (10, 3)
"""

from __future__ import annotations

import numpy as np

WEIGHT_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _shape(a) -> str:
    return str(tuple(np.shape(a)))


def as_array(name: str, value) -> np.ndarray:
    """``np.asarray`` that rejects non-numeric input with a message naming ``name``."""
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} must be a numeric array, got {type(value).__name__}") from exc
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a real numeric array, got dtype {array.dtype}")
    return array


def check_finite(name: str, array: np.ndarray) -> None:
    """Raise if ``array`` holds NaN or inf (they would silently poison every later step)."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} must be finite, found {bad} NaN/inf value(s)")


def compute_dtype(*arrays: np.ndarray) -> np.dtype:
    """float32 if NumPy promotes the inputs and float32 to float32 (float32 with 8- and 16-bit
    integers; 32- and 64-bit integers count as float64), else float64."""
    dtype = np.result_type(*arrays, np.float32)
    return np.dtype(np.float64) if dtype.itemsize > 4 else np.dtype(np.float32)


def check_params(
    params, *, gate_count: int, optional: tuple[str, ...] = ()
) -> tuple[int, int, dict[str, np.ndarray]]:
    """Check a PyTorch-layout parameter dict; return ``(D, H, arrays)``.

    ``optional`` names extra ``(H,)`` vectors (the LSTM's peepholes) that are either all present
    or all absent.  ``G = gate_count`` is 1 (RNN), 3 (GRU) or 4 (LSTM).
    """
    if not isinstance(params, dict):
        raise ValueError(f"params must be a dict of arrays, got {type(params).__name__}")
    missing = [key for key in WEIGHT_KEYS if key not in params]
    if missing:
        raise ValueError(f"params is missing key(s) {missing}; expected {list(WEIGHT_KEYS)}")
    present_optional = [key for key in optional if key in params]
    if present_optional and len(present_optional) != len(optional):
        absent = [key for key in optional if key not in params]
        raise ValueError(f"params has {present_optional} but not {absent}; give all or none")
    unexpected = sorted(set(params) - set(WEIGHT_KEYS) - set(optional))
    if unexpected:
        raise ValueError(
            f"params has unexpected key(s) {unexpected}; expected {list(WEIGHT_KEYS)}"
            + (f" and optionally {list(optional)}" if optional else "")
        )
    arrays = {key: as_array(f"params[{key!r}]", params[key]) for key in params}
    rows = "H" if gate_count == 1 else f"{gate_count}*H"

    w_hh = arrays["weight_hh"]
    if w_hh.ndim != 2 or w_hh.shape[1] < 1 or w_hh.shape[0] != gate_count * w_hh.shape[1]:
        raise ValueError(f"params['weight_hh'] must have shape ({rows}, H), got {_shape(w_hh)}")
    hidden = w_hh.shape[1]
    rows = f"{rows}={gate_count * hidden}"

    w_ih = arrays["weight_ih"]
    if w_ih.ndim != 2 or w_ih.shape[0] != gate_count * hidden or w_ih.shape[1] < 1:
        raise ValueError(f"params['weight_ih'] must have shape ({rows}, D), got {_shape(w_ih)}")
    for key in ("bias_ih", "bias_hh"):
        if arrays[key].shape != (gate_count * hidden,):
            raise ValueError(
                f"params[{key!r}] must have shape ({rows},), got {_shape(arrays[key])}"
            )
    for key in present_optional:
        if arrays[key].shape != (hidden,):
            raise ValueError(f"params[{key!r}] must have shape (H={hidden},), got "
                             f"{_shape(arrays[key])}")
    for key, array in arrays.items():
        check_finite(f"params[{key!r}]", array)
    return w_ih.shape[1], hidden, arrays


def check_sequence(x, input_size: int) -> np.ndarray:
    """``x`` must be a finite ``(T, B, D)`` array with ``T, B >= 1``."""
    x = as_array("x", x)
    if x.ndim != 3 or x.shape[2] != input_size:
        raise ValueError(f"x must have shape (T, B, D={input_size}) (time-major), got {_shape(x)}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"x must have shape (T, B, D={input_size}) (time-major) with T >= 1 "
                         f"and B >= 1, got {_shape(x)}")
    check_finite("x", x)
    return x


def check_step_input(x_t, input_size: int) -> np.ndarray:
    """``x_t`` must be a finite ``(B, D)`` array (one time step of a batch)."""
    x_t = as_array("x_t", x_t)
    if x_t.ndim != 2 or x_t.shape[1] != input_size or x_t.shape[0] < 1:
        raise ValueError(f"x_t must have shape (B, D={input_size}), got {_shape(x_t)}")
    check_finite("x_t", x_t)
    return x_t


def check_state(name: str, state, batch: int, hidden: int) -> np.ndarray:
    """A hidden (or cell) state must be a finite ``(B, H)`` array matching the input's batch."""
    state = as_array(name, state)
    if state.shape != (batch, hidden):
        raise ValueError(f"{name} must have shape (B={batch}, H={hidden}), got {_shape(state)}")
    check_finite(name, state)
    return state


def check_gradient(name: str, grad, shape: tuple[int, ...], labels: str) -> np.ndarray:
    """An upstream gradient must have exactly the shape of the value it belongs to."""
    grad = as_array(name, grad)
    if grad.shape != tuple(shape):
        sizes = ", ".join(f"{label}={size}" for label, size in zip(labels, shape, strict=True))
        raise ValueError(f"{name} must have shape ({sizes}), got {_shape(grad)}")
    check_finite(name, grad)
    return grad


def check_choice(name: str, value, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value
