"""Reference results from torch autograd for the companion's cell tests (not a test module).

Every helper takes NumPy inputs, builds the torch equivalent with the companion's parameters
(copied with :func:`companion.interop.to_torch`), runs it with autograd on the loss
``L = sum(outputs * d_outputs) + sum(final_state * d_final_state)`` and returns NumPy arrays.
"""

from __future__ import annotations

import numpy as np
import torch

from companion import cells
from companion.interop import from_torch, to_torch

TORCH_DTYPES = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}


def random_case(kind, seed, *, steps=None, batch=None, input_size=None, hidden_size=None,
                dtype=np.float64, with_state=True, with_final_grad=True):
    """Random sizes (unless given), params, x, initial state and upstream gradients."""
    rng = np.random.default_rng(seed)
    T = steps or int(rng.integers(1, 7))
    B = batch or int(rng.integers(1, 5))
    D = input_size or int(rng.integers(1, 8))
    H = hidden_size or int(rng.integers(1, 7))
    cell = cells.get(kind)
    gate_count = cell.gate_count
    bound = 1 / np.sqrt(H)

    def draw(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(dtype)

    params = {
        "weight_ih": rng.uniform(-bound, bound, (gate_count * H, D)).astype(dtype),
        "weight_hh": rng.uniform(-bound, bound, (gate_count * H, H)).astype(dtype),
        "bias_ih": rng.uniform(-bound, bound, gate_count * H).astype(dtype),
        "bias_hh": rng.uniform(-bound, bound, gate_count * H).astype(dtype),
    }
    x = draw(T, B, D)
    n_states = len(cell.state_names)
    state = tuple(draw(B, H, scale=0.5) for _ in range(n_states)) if with_state else None
    d_final = tuple(draw(B, H) for _ in range(n_states)) if with_final_grad else None
    if not cell.has_cell_state:
        state = None if state is None else state[0]
        d_final = None if d_final is None else d_final[0]
    return {"params": params, "x": x, "state": state, "d_outputs": draw(T, B, H),
            "d_final": d_final, "sizes": (T, B, D, H)}


def _leaf(array, dtype):
    return torch.tensor(np.asarray(array), dtype=dtype, requires_grad=True)


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def torch_sequence(kind, params, x, state=None, d_outputs=None, d_final=None, **kwargs):
    """torch.nn.RNN / LSTM / GRU forward + backward (``kind`` is a row of
    :data:`companion.cells.CELLS` with a ``torch_class``).  Returns a dict of NumPy arrays:
    ``outputs``, ``final`` (tuple of states), ``dx``, ``d_state0`` (tuple) and ``grads``."""
    cell = cells.get(kind)
    dtype = TORCH_DTYPES[np.asarray(x).dtype]
    T, B, D = x.shape
    H = params["weight_hh"].shape[1]
    module = getattr(torch.nn, cell.torch_class)(D, H, **kwargs).to(dtype)
    to_torch(params, module)
    x_t = _leaf(x, dtype)
    if state is None:
        state = tuple(np.zeros((B, H)) for _ in cell.state_names)
    states = [_leaf(np.asarray(s)[None], dtype) for s in _as_tuple(state)]
    outputs, final = module(x_t, cell.pack_state(tuple(states)))
    final = _as_tuple(final)
    loss = (outputs * torch.as_tensor(d_outputs, dtype=dtype)).sum()
    if d_final is not None:
        for f, d in zip(final, _as_tuple(d_final), strict=True):
            loss = loss + (f[0] * torch.as_tensor(d, dtype=dtype)).sum()
    loss.backward()
    grads = {key: getattr(module, key + "_l0").grad.numpy() for key in params}
    return {
        "outputs": outputs.detach().numpy(),
        "final": tuple(f[0].detach().numpy() for f in final),
        "dx": x_t.grad.numpy(),
        "d_state0": tuple(s.grad[0].numpy() for s in states),
        "grads": grads,
    }


def torch_cell(kind, params, x_t, state, d_state, **kwargs):
    """torch.nn.RNNCell / LSTMCell / GRUCell step with loss sum(new_state * d_state).
    Returns ``new_state`` (tuple), ``dx``, ``d_state_prev`` (tuple), ``grads``."""
    row = cells.get(kind)
    dtype = TORCH_DTYPES[np.asarray(x_t).dtype]
    B, D = x_t.shape
    H = params["weight_hh"].shape[1]
    cell = getattr(torch.nn, row.torch_cell_class)(D, H, **kwargs).to(dtype)
    to_torch(params, cell)
    x_leaf = _leaf(x_t, dtype)
    states = [_leaf(s, dtype) for s in _as_tuple(state)]
    new = _as_tuple(cell(x_leaf, row.pack_state(tuple(states))))
    loss = sum((s * torch.as_tensor(d, dtype=dtype)).sum()
               for s, d in zip(new, _as_tuple(d_state), strict=True))
    loss.backward()
    return {
        "new_state": tuple(s.detach().numpy() for s in new),
        "dx": x_leaf.grad.numpy(),
        "d_state_prev": tuple(s.grad.numpy() for s in states),
        "grads": {key: getattr(cell, key).grad.numpy() for key in params},
    }


def torch_gru_reset_before(params, x, h0=None, d_outputs=None, d_final=None):
    """Direct autograd implementation of the Cho et al. (2014) GRU (reset before the matmul):
    n = tanh(W_in x + b_in + W_hn (r * h) + b_hn).  Same return format as torch_sequence."""
    dtype = torch.float64
    T, B, D = x.shape
    H = params["weight_hh"].shape[1]
    p = {key: _leaf(value, dtype) for key, value in params.items()}
    x_t = _leaf(x, dtype)
    h0_t = _leaf(np.zeros((B, H)) if h0 is None else h0, dtype)
    W_ir, W_iz, W_in = p["weight_ih"].split(H)
    W_hr, W_hz, W_hn = p["weight_hh"].split(H)
    b_ir, b_iz, b_in = p["bias_ih"].split(H)
    b_hr, b_hz, b_hn = p["bias_hh"].split(H)
    h = h0_t
    outputs = []
    for t in range(T):
        r = torch.sigmoid(x_t[t] @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
        z = torch.sigmoid(x_t[t] @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
        n = torch.tanh(x_t[t] @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
        h = (1 - z) * n + z * h
        outputs.append(h)
    outputs = torch.stack(outputs)
    loss = (outputs * torch.as_tensor(d_outputs, dtype=dtype)).sum()
    if d_final is not None:
        loss = loss + (h * torch.as_tensor(d_final, dtype=dtype)).sum()
    loss.backward()
    return {
        "outputs": outputs.detach().numpy(),
        "final": (h.detach().numpy(),),
        "dx": x_t.grad.numpy(),
        "d_state0": (h0_t.grad.numpy(),),
        "grads": {key: value.grad.numpy() for key, value in p.items()},
    }


def cifg_step(x_t, h, c, p):
    """One coupled input-forget gate LSTM step written with torch operations (autograd
    reference for companion.cifg): gates f, g, o in that block order, i = 1 - f."""
    H = h.shape[1]
    pre = x_t @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
    a_f, a_g, a_o = pre.split(H, dim=1)
    f, g, o = torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
    c = f * c + (1 - f) * g
    return o * torch.tanh(c), c


def torch_cifg(params, x, state=None, d_outputs=None, d_final=None):
    """The CIFG by hand in torch, float64, with autograd.  Same return format as
    :func:`torch_sequence`."""
    dtype = torch.float64
    T, B, D = x.shape
    H = params["weight_hh"].shape[1]
    p = {key: _leaf(value, dtype) for key, value in params.items()}
    x_t = _leaf(x, dtype)
    zeros = np.zeros((B, H))
    h0, c0 = (zeros, zeros) if state is None else state
    h0_t, c0_t = _leaf(h0, dtype), _leaf(c0, dtype)
    h, c, outputs = h0_t, c0_t, []
    for t in range(T):
        h, c = cifg_step(x_t[t], h, c, p)
        outputs.append(h)
    outputs = torch.stack(outputs)
    loss = (outputs * torch.as_tensor(d_outputs, dtype=dtype)).sum()
    if d_final is not None:
        loss = loss + (h * torch.as_tensor(d_final[0], dtype=dtype)).sum()
        loss = loss + (c * torch.as_tensor(d_final[1], dtype=dtype)).sum()
    loss.backward()
    return {
        "outputs": outputs.detach().numpy(),
        "final": (h.detach().numpy(), c.detach().numpy()),
        "dx": x_t.grad.numpy(),
        "d_state0": (h0_t.grad.numpy(), c0_t.grad.numpy()),
        "grads": {key: value.grad.numpy() for key, value in p.items()},
    }


def assert_close(actual, expected, tol, what=""):
    """max |actual - expected| <= tol * max(1, max |expected|)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    err = float(np.max(np.abs(actual - expected), initial=0.0))
    assert err <= tol * scale, f"{what}: max abs error {err:.3g} > {tol:.1g} * {scale:.3g}"


def assert_matches(ours, ref, tol):
    """Compare ours = dict(outputs, final, dx, d_state0, grads) against a reference dict."""
    for key in ("outputs", "dx"):
        assert_close(ours[key], ref[key], tol, key)
    for key in ("final", "d_state0"):
        for k, (a, b) in enumerate(zip(ours[key], ref[key], strict=True)):
            assert_close(a, b, tol, f"{key}[{k}]")
    assert set(ours["grads"]) == set(ref["grads"])
    for key in ref["grads"]:
        assert ours["grads"][key].dtype == ours["outputs"].dtype, key
        assert_close(ours["grads"][key], ref["grads"][key], tol, f"grads[{key!r}]")


__all__ = ["from_torch", "random_case", "torch_sequence", "torch_cell",
           "torch_gru_reset_before", "cifg_step", "torch_cifg", "assert_close", "assert_matches"]


def companion_sequence(module, params, x, state=None, d_outputs=None, d_final=None, **kwargs):
    """Our forward + backward in the same dict format as :func:`torch_sequence`."""
    outputs, final, cache = module.forward(x, params, state, **kwargs)
    dx, d_state0, grads = module.backward(d_outputs, cache, d_final)
    return {"outputs": outputs, "final": _as_tuple(final), "dx": dx,
            "d_state0": _as_tuple(d_state0), "grads": grads, "cache": cache}


__all__ += ["companion_sequence"]
