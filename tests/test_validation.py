"""Bad input raises ValueError naming the argument, the expected shape and the given one."""

import re

import numpy as np
import pytest

from companion import cells, gru, lstm, rnn

MODULES = {kind: cell.module for kind, cell in cells.CELLS.items()}
GATES = {kind: cell.gate_count for kind, cell in cells.CELLS.items()}
D, H, B, T = 4, 5, 3, 2


def _params(kind):
    return MODULES[kind].init_params(D, H, seed=0)


def _state(kind, h, c=None):
    return (h, np.zeros((B, H)) if c is None else c) if cells.get(kind).has_cell_state else h


def _raises(message, call, *args, **kwargs):
    with pytest.raises(ValueError, match=re.escape(message)):
        call(*args, **kwargs)


@pytest.mark.parametrize("kind", MODULES)
class TestSequenceInputs:
    def test_wrong_rank_of_x(self, kind):
        _raises("x must have shape (T, B, D=4) (time-major), got (3, 4)",
                MODULES[kind].forward, np.zeros((3, 4)), _params(kind))

    def test_wrong_feature_size(self, kind):
        _raises("x must have shape (T, B, D=4) (time-major), got (2, 3, 6)",
                MODULES[kind].forward, np.zeros((2, 3, 6)), _params(kind))

    def test_empty_sequence(self, kind):
        _raises("with T >= 1 and B >= 1, got (0, 3, 4)", MODULES[kind].forward,
                np.zeros((0, B, D)), _params(kind))

    def test_state_batch_differs_from_input_batch(self, kind):
        _raises("h0 must have shape (B=3, H=5), got (2, 5)", MODULES[kind].forward,
                np.zeros((T, B, D)), _params(kind), _state(kind, np.zeros((2, H))))

    def test_state_size_differs_from_hidden_size(self, kind):
        _raises("h0 must have shape (B=3, H=5), got (3, 4)", MODULES[kind].forward,
                np.zeros((T, B, D)), _params(kind), _state(kind, np.zeros((B, 4))))

    def test_nan_in_x(self, kind):
        x = np.zeros((T, B, D))
        x[1, 2, 3] = np.nan
        _raises("x must be finite, found 1 NaN/inf value(s)", MODULES[kind].forward, x,
                _params(kind))

    def test_inf_in_state(self, kind):
        h0 = np.zeros((B, H))
        h0[0, 0] = -np.inf
        _raises("h0 must be finite", MODULES[kind].forward, np.zeros((T, B, D)), _params(kind),
                _state(kind, h0))

    def test_nan_in_params(self, kind):
        params = _params(kind)
        params["bias_hh"][0] = np.nan
        _raises("params['bias_hh'] must be finite", MODULES[kind].forward,
                np.zeros((T, B, D)), params)

    def test_weight_hh_of_wrong_shape(self, kind):
        params = _params(kind)
        params["weight_hh"] = np.zeros((GATES[kind] * H, H + 1))
        rows = "H" if kind == "rnn" else f"{GATES[kind]}*H"
        _raises(f"params['weight_hh'] must have shape ({rows}, H), got "
                f"({GATES[kind] * H}, {H + 1})", MODULES[kind].forward, np.zeros((T, B, D)),
                params)

    def test_weight_ih_with_wrong_gate_rows(self, kind):
        params = _params(kind)
        params["weight_ih"] = np.zeros((GATES[kind] * H + 1, D))
        rows = "H" if kind == "rnn" else f"{GATES[kind]}*H"
        _raises(f"params['weight_ih'] must have shape ({rows}={GATES[kind] * H}, D), got "
                f"({GATES[kind] * H + 1}, {D})", MODULES[kind].forward, np.zeros((T, B, D)),
                params)

    def test_bias_of_wrong_size(self, kind):
        params = _params(kind)
        params["bias_ih"] = np.zeros(H)
        rows = "H" if kind == "rnn" else f"{GATES[kind]}*H"
        if kind == "rnn":
            params["bias_ih"] = np.zeros(H + 1)
        _raises(f"params['bias_ih'] must have shape ({rows}={GATES[kind] * H},), got",
                MODULES[kind].forward, np.zeros((T, B, D)), params)

    def test_missing_and_unexpected_keys(self, kind):
        params = _params(kind)
        del params["bias_hh"]
        _raises("params is missing key(s) ['bias_hh']", MODULES[kind].forward,
                np.zeros((T, B, D)), params)
        params = {**_params(kind), "weight_extra": np.zeros(3)}
        _raises("params has unexpected key(s) ['weight_extra']", MODULES[kind].forward,
                np.zeros((T, B, D)), params)

    def test_d_outputs_of_wrong_shape(self, kind):
        _, _, cache = MODULES[kind].forward(np.zeros((T, B, D)), _params(kind))
        _raises("d_outputs must have shape (T=2, B=3, H=5), got (2, 3, 4)",
                MODULES[kind].backward, np.zeros((T, B, 4)), cache)

    def test_d_final_state_of_wrong_shape(self, kind):
        _, _, cache = MODULES[kind].forward(np.zeros((T, B, D)), _params(kind))
        if cells.get(kind).has_cell_state:
            _raises("dc_T must have shape (B=3, H=5), got (5, 3)", MODULES[kind].backward,
                    None, cache, (None, np.zeros((H, B))))
        else:
            _raises("d_final_state must have shape (B=3, H=5), got (5, 3)",
                    MODULES[kind].backward, None, cache, np.zeros((H, B)))

    def test_nan_upstream_gradient(self, kind):
        _, _, cache = MODULES[kind].forward(np.zeros((T, B, D)), _params(kind))
        d_outputs = np.full((T, B, H), np.nan)
        _raises("d_outputs must be finite", MODULES[kind].backward, d_outputs, cache)


@pytest.mark.parametrize("kind", MODULES)
class TestStepInputs:
    def _cell_forward(self, kind, x_t, state, params):
        return MODULES[kind].cell_forward(x_t, state, params)

    def test_wrong_x_t(self, kind):
        _raises("x_t must have shape (B, D=4), got (4,)", self._cell_forward, kind,
                np.zeros(D), None, _params(kind))

    def test_wrong_h_prev(self, kind):
        _raises("h_prev must have shape (B=3, H=5), got (1, 5)", self._cell_forward, kind,
                np.zeros((B, D)), _state(kind, np.zeros((1, H))), _params(kind))

    def test_wrong_dh_t(self, kind):
        _, cache = self._cell_forward(kind, np.zeros((B, D)), None, _params(kind))
        args = (np.zeros((B, H + 1)), None, cache) if cells.get(kind).has_cell_state else \
            (np.zeros((B, H + 1)), cache)
        _raises("dh_t must have shape (B=3, H=5), got (3, 6)", MODULES[kind].cell_backward,
                *args)


@pytest.mark.parametrize("kind", [k for k in cells.KINDS if cells.get(k).has_cell_state])
def test_cell_state_errors(kind):
    module = MODULES[kind]
    x, params = np.zeros((T, B, D)), module.init_params(D, H)
    _raises("c0 must have shape (B=3, H=5), got (3, 2)", module.forward, x, params,
            (np.zeros((B, H)), np.zeros((B, 2))))
    _raises("state must be a pair (h0, c0) of (B=3, H=5) arrays or None, got ndarray",
            module.forward, x, params, np.zeros((B, H)))
    _raises("c_prev must have shape (B=3, H=5), got (3,)", module.cell_forward, x[0],
            (None, np.zeros(B)), params)


def test_peephole_key_errors():
    x = np.zeros((T, B, D))
    params = lstm.init_params(D, H, peephole=True)
    params["weight_peep_o"] = np.zeros(H + 1)
    _raises("params['weight_peep_o'] must have shape (H=5,), got (6,)", lstm.forward, x, params)
    del params["weight_peep_o"]
    _raises("params has ['weight_peep_i', 'weight_peep_f'] but not ['weight_peep_o']",
            lstm.forward, x, params)


def test_variant_keywords_are_checked():
    _raises("nonlinearity must be one of ['tanh', 'relu'], got 'sigmoid'", rnn.forward,
            np.zeros((T, B, D)), rnn.init_params(D, H), nonlinearity="sigmoid")
    _raises("reset must be one of ['after', 'before'], got 'never'", gru.forward,
            np.zeros((T, B, D)), gru.init_params(D, H), reset="never")
    _raises("reset must be one of ['after', 'before'], got 'never'", gru.cell_forward,
            np.zeros((B, D)), None, gru.init_params(D, H), reset="never")


@pytest.mark.parametrize("kind", MODULES)
def test_init_params_rejects_bad_sizes(kind):
    _raises("hidden_size must be a positive integer, got 0", MODULES[kind].init_params, 3, 0)
    _raises("input_size must be a positive integer, got 2.5", MODULES[kind].init_params, 2.5, 3)
    _raises("dtype must be a floating dtype", MODULES[kind].init_params, 2, 3, dtype=np.int64)


def test_params_must_be_a_dict_of_real_arrays():
    _raises("params must be a dict of arrays, got list", rnn.forward, np.zeros((T, B, D)), [])
    params = rnn.init_params(D, H)
    params["weight_ih"] = params["weight_ih"].astype(complex)
    _raises("params['weight_ih'] must be a real numeric array, got dtype complex128",
            rnn.forward, np.zeros((T, B, D)), params)


def test_dtype_rules():
    """float32 everywhere stays float32; any float64 (or integer) input gives float64."""
    params32 = gru.init_params(D, H, dtype=np.float32)
    assert gru.forward(np.zeros((T, B, D), np.float32), params32)[0].dtype == np.float32
    assert gru.forward(np.zeros((T, B, D)), params32)[0].dtype == np.float64
    assert gru.forward(np.zeros((T, B, D), dtype=int), params32)[0].dtype == np.float64
