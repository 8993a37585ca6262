"""Exercises of chapter 5 (gated recurrent unit): one GRU step in PyTorch's convention and its
backward pass.

PyTorch's convention (``torch.nn.GRU``, cuDNN): blocks stacked r, z, n; the reset gate acts
*after* the recurrent product, on ``W_hn h_{t-1} + b_hn``; and ``z_t -> 1`` keeps the old
state, ``h_t = (1 - z_t) * n_t + z_t * h_{t-1}``. Equation numbers refer to
``lessons/05_gru.ipynb``.
"""

import numpy as np

from companion import gru
from companion.activations import sigmoid
from companion.exercises.cases import batch_size, distinct_sizes, random_params
from companion.exercises.core import Exercise, Mutant, Output, register

_LESSON = "lessons/05_gru.ipynb"


# --------------------------------------------------------------------------- references


def gru_cell_forward(x_t, h_prev, params):
    """One GRU step in PyTorch's convention, eqs. (5.1)-(5.4), for a batch of B sequences.

    x_t (B, D), h_prev (B, H); params in PyTorch's layout (weight_ih (3H, D), weight_hh
    (3H, H), bias_ih and bias_hh (3H,)), blocks r, z, n. Returns h_t (B, H).
    """
    H = h_prev.shape[1]
    a_x = x_t @ params["weight_ih"].T + params["bias_ih"]  # input part, (B, 3H)
    a_h = h_prev @ params["weight_hh"].T + params["bias_hh"]  # recurrent part, (B, 3H)
    r_t = sigmoid(a_x[:, :H] + a_h[:, :H])  # reset gate (5.1)
    z_t = sigmoid(a_x[:, H:2 * H] + a_h[:, H:2 * H])  # update gate (5.2)
    n_t = np.tanh(a_x[:, 2 * H:] + r_t * a_h[:, 2 * H:])  # candidate (5.3): r after W_hn h
    h_t = (1 - z_t) * n_t + z_t * h_prev  # interpolation (5.4)
    return h_t


def gru_cell_backward(dh_t, cache):
    """Backward pass of one GRU step (PyTorch's convention), eqs. (5.10)-(5.14).

    dh_t (B, H): the whole gradient dL/dh_t reaching this step. cache: the dict that
    ``companion.gru.cell_forward`` returns, with x_t, h_prev, the gate activations r, z, n,
    hn = W_hn h_prev + b_hn (the recurrent part of the candidate, before the reset gate) and
    params. Returns dx_t (B, D), dh_prev (B, H) and grads, a dict with the keys and shapes of
    params (summed over the batch).
    """
    r, z, n, hn = cache["r"], cache["z"], cache["n"], cache["hn"]
    h_prev, params = cache["h_prev"], cache["params"]
    da_n = dh_t * (1 - z) * (1 - n**2)  # (5.10)
    da_z = dh_t * (h_prev - n) * z * (1 - z)  # (5.11)
    da_r = da_n * hn * r * (1 - r)  # (5.12)
    # The input part of each block sees da directly; the recurrent part of the candidate
    # block is multiplied by r_t on its way (5.13).
    da_x = np.concatenate([da_r, da_z, da_n], axis=1)  # (B, 3H), order r, z, n
    da_h = np.concatenate([da_r, da_z, da_n * r], axis=1)
    dx_t = da_x @ params["weight_ih"]
    dh_prev = dh_t * z + da_h @ params["weight_hh"]  # direct path + through the gates (5.14)
    grads = {
        "weight_ih": da_x.T @ cache["x_t"],
        "weight_hh": da_h.T @ h_prev,
        "bias_ih": da_x.sum(axis=0),
        "bias_hh": da_h.sum(axis=0),
    }
    return dx_t, dh_prev, grads


# --------------------------------------------------------------------------- cases


def _cell_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    for k in range(3):
        B, D, H = distinct_sizes(rng, 3)
        B = batch_size(k, B)
        cases.append({
            "x_t": rng.standard_normal((B, D)),
            "h_prev": np.tanh(rng.standard_normal((B, H))),
            "params": random_params(rng, D, H, gates=3),
        })
    return cases


def _backward_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    for case in _cell_cases(rng):
        _, cache = gru.cell_forward(case["x_t"], case["h_prev"], case["params"])
        cases.append({"dh_t": rng.standard_normal(case["h_prev"].shape), "cache": cache})
    return cases


# --------------------------------------------------------------------------- mutants: forward


def _parts(x_t, h_prev, params, order="rzn"):
    H = h_prev.shape[1]
    a_x = x_t @ params["weight_ih"].T + params["bias_ih"]
    a_h = h_prev @ params["weight_hh"].T + params["bias_hh"]
    cut = {name: (a_x[:, k * H:(k + 1) * H], a_h[:, k * H:(k + 1) * H])
           for k, name in enumerate(order)}
    return cut["r"], cut["z"], cut["n"]


def _fw_z_flipped(x_t, h_prev, params):
    (rx, rh), (zx, zh), (nx, nh) = _parts(x_t, h_prev, params)
    r, z = sigmoid(rx + rh), sigmoid(zx + zh)
    n = np.tanh(nx + r * nh)
    return (1 - z) * h_prev + z * n


def _fw_reset_before(x_t, h_prev, params):
    H = h_prev.shape[1]
    (rx, rh), (zx, zh), (nx, _) = _parts(x_t, h_prev, params)
    r, z = sigmoid(rx + rh), sigmoid(zx + zh)
    n = np.tanh(nx + (r * h_prev) @ params["weight_hh"][2 * H:].T + params["bias_hh"][2 * H:])
    return (1 - z) * n + z * h_prev


def _fw_reset_skips_b_hn(x_t, h_prev, params):
    H = h_prev.shape[1]
    (rx, rh), (zx, zh), (nx, _) = _parts(x_t, h_prev, params)
    r, z = sigmoid(rx + rh), sigmoid(zx + zh)
    n = np.tanh(nx + r * (h_prev @ params["weight_hh"][2 * H:].T) + params["bias_hh"][2 * H:])
    return (1 - z) * n + z * h_prev


def _fw_order_zrn(x_t, h_prev, params):
    (rx, rh), (zx, zh), (nx, nh) = _parts(x_t, h_prev, params, order="zrn")
    r, z = sigmoid(rx + rh), sigmoid(zx + zh)
    n = np.tanh(nx + r * nh)
    return (1 - z) * n + z * h_prev


def _fw_no_reset(x_t, h_prev, params):
    (_, _), (zx, zh), (nx, nh) = _parts(x_t, h_prev, params)
    z = sigmoid(zx + zh)
    n = np.tanh(nx + nh)
    return (1 - z) * n + z * h_prev


def _fw_sigmoid_candidate(x_t, h_prev, params):
    (rx, rh), (zx, zh), (nx, nh) = _parts(x_t, h_prev, params)
    r, z = sigmoid(rx + rh), sigmoid(zx + zh)
    n = sigmoid(nx + r * nh)
    return (1 - z) * n + z * h_prev


def _fw_reset_on_input_too(x_t, h_prev, params):
    (rx, rh), (zx, zh), (nx, nh) = _parts(x_t, h_prev, params)
    r, z = sigmoid(rx + rh), sigmoid(zx + zh)
    n = np.tanh(r * (nx + nh))
    return (1 - z) * n + z * h_prev


register(
    Exercise(
        id="gru_cell_forward",
        title="One step of a GRU (PyTorch's convention)",
        reference=gru_cell_forward,
        make_cases=_cell_cases,
        outputs=(Output("h_t", "(B, H)"),),
        mutants=(
            Mutant("z_flipped", _fw_z_flipped,
                   "your update gate points the other way: (1 - z) * h_prev + z * n is the "
                   "convention of Chung et al. (2014). PyTorch, like Cho et al. (2014), keeps the "
                   "old state in proportion to z: h_t = (1 - z_t) * n_t + z_t * h_prev."),
            Mutant("reset_before", _fw_reset_before,
                   "you applied the reset gate before the recurrent product, W_hn (r * h_prev), "
                   "as Cho et al. (2014) do. PyTorch applies it after: r * (W_hn h_prev + b_hn), "
                   "eq. (5.3)."),
            Mutant("reset_skips_b_hn", _fw_reset_skips_b_hn,
                   "the reset gate multiplies the whole recurrent part of the candidate, bias "
                   "included: r * (h_prev @ W_hn.T + b_hn). You added b_hn outside."),
            Mutant("order_zrn", _fw_order_zrn,
                   "your gate blocks are in the wrong order: PyTorch stacks r, z, n, so the reset "
                   "gate is rows 0:H and the update gate rows H:2H."),
            Mutant("no_reset", _fw_no_reset,
                   "the reset gate is computed but never used: it scales the recurrent part of "
                   "the candidate, n_t = tanh(W_in x + b_in + r_t * (W_hn h_prev + b_hn))."),
            Mutant("sigmoid_candidate", _fw_sigmoid_candidate,
                   "the candidate n_t uses tanh, with values in (-1, 1); the sigmoid is for the "
                   "two gates."),
            Mutant("reset_on_input_too", _fw_reset_on_input_too,
                   "the reset gate only scales the recurrent part of the candidate; the input "
                   "part W_in x_t + b_in is added unscaled."),
        ),
        hints=(
            "Compute the input part x_t @ W_ih.T + b_ih and the recurrent part "
            "h_prev @ W_hh.T + b_hh, both (B, 3H), and cut each into blocks r, z, n.",
            "r and z: sigmoid of the sum of their input and recurrent blocks. n: tanh of the "
            "input block plus r times the recurrent block (bias included).",
            "r = sigmoid(ax_r + ah_r); z = sigmoid(ax_z + ah_z); n = tanh(ax_n + r * ah_n); "
            "h_t = (1 - z) * n + z * h_prev.",
        ),
        equation="eqs. (5.1)-(5.4) in chapter 5",
        what="h_t equals torch.nn.GRU's step (reset after the product, z keeps the old state) "
             "to 1e-7 for B, D, H all different",
        lesson=_LESSON,
    )
)


# --------------------------------------------------------------------------- mutants: backward


def _bw_variant(dh_t, cache, *, direct=True, z_sign=1.0, n_slope=True, r_on_hh=True,
                hn_bias=True):
    r, z, n, hn = cache["r"], cache["z"], cache["n"], cache["hn"]
    h_prev, params = cache["h_prev"], cache["params"]
    H = h_prev.shape[1]
    da_n = dh_t * (1 - z) * ((1 - n**2) if n_slope else 1.0)
    da_z = z_sign * dh_t * (h_prev - n) * z * (1 - z)
    seen = hn if hn_bias else hn - params["bias_hh"][2 * H:]
    da_r = da_n * seen * r * (1 - r)
    da_x = np.concatenate([da_r, da_z, da_n], axis=1)
    da_h = np.concatenate([da_r, da_z, da_n * r if r_on_hh else da_n], axis=1)
    dh_prev = (dh_t * z if direct else 0.0) + da_h @ params["weight_hh"]
    grads = {"weight_ih": da_x.T @ cache["x_t"], "weight_hh": da_h.T @ h_prev,
             "bias_ih": da_x.sum(axis=0), "bias_hh": da_h.sum(axis=0)}
    return da_x @ params["weight_ih"], dh_prev, grads


def _bw_no_direct_path(dh_t, cache):
    return _bw_variant(dh_t, cache, direct=False)


def _bw_z_sign(dh_t, cache):
    return _bw_variant(dh_t, cache, z_sign=-1.0)


def _bw_no_tanh_prime(dh_t, cache):
    return _bw_variant(dh_t, cache, n_slope=False)


def _bw_r_missing_on_hh(dh_t, cache):
    return _bw_variant(dh_t, cache, r_on_hh=False)


def _bw_hn_without_bias(dh_t, cache):
    return _bw_variant(dh_t, cache, hn_bias=False)


register(
    Exercise(
        id="gru_cell_backward",
        title="Backward pass of one GRU step",
        reference=gru_cell_backward,
        make_cases=_backward_cases,
        outputs=(Output("dx_t", "(B, D)"), Output("dh_prev", "(B, H)"),
                 Output("grads", "dict like params")),
        mutants=(
            Mutant("no_direct_path", _bw_no_direct_path,
                   "dh_prev misses the direct path: h_t = ... + z_t * h_prev, so dh_prev starts "
                   "with dh_t * z_t, before anything flows back through the gates (eq. 5.14)."),
            Mutant("z_sign", _bw_z_sign,
                   "the update gate's gradient has the wrong sign: dh_t/dz_t = h_prev - n_t "
                   "(z keeps the old state), eq. (5.11)."),
            Mutant("no_tanh_prime", _bw_no_tanh_prime,
                   "the candidate's gradient must go back through tanh: "
                   "da_n = dh_t * (1 - z) * (1 - n**2), eq. (5.10)."),
            Mutant("r_missing_on_hh", _bw_r_missing_on_hh,
                   "the recurrent part of the candidate, W_hn h_prev + b_hn, was multiplied by "
                   "r_t in the forward pass, so its gradient is da_n * r_t: that is what flows "
                   "into dW_hh, db_hh and dh_prev for the n block (eq. 5.13). Only the input "
                   "part sees da_n itself."),
            Mutant("hn_without_bias", _bw_hn_without_bias,
                   "r_t multiplies W_hn h_prev + b_hn, bias included, so dL/dr_t = da_n * hn with "
                   "hn = W_hn h_prev + b_hn (cache['hn']), eq. (5.12)."),
        ),
        hints=(
            "Go backwards through eq. (5.4), then (5.3), then the two gates: find da_n, da_z "
            "and da_r, the gradients of the pre-activations of the three blocks.",
            "The candidate block is special: its input part gets da_n, its recurrent part "
            "(before r multiplies it) gets da_n * r. The r and z blocks get the same gradient "
            "in both parts.",
            "da_n = dh*(1-z)*(1-n**2); da_z = dh*(h_prev-n)*z*(1-z); da_r = da_n*hn*r*(1-r); "
            "da_x = [da_r, da_z, da_n]; da_h = [da_r, da_z, da_n*r]; "
            "dh_prev = dh*z + da_h @ W_hh; dx_t = da_x @ W_ih.",
        ),
        equation="eqs. (5.10)-(5.14) in chapter 5",
        what="dx_t, dh_prev and every parameter gradient equal the chain rule through "
             "eqs. (5.1)-(5.4) to 1e-7",
        lesson=_LESSON,
    )
)
