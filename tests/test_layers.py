"""companion.layers against torch.nn.RNN / LSTM / GRU with num_layers, bidirectional and packed
variable-length batches; dropout by its statistics and by finite differences with fixed masks;
and the errors bad input gets."""

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from companion import cells, layers
from companion.gradients import gradcheck

# Kinds with a torch.nn layer to compare against (CIFG has none: its layers are checked by
# finite differences below, like every kind).
TORCH_KINDS = [kind for kind in cells.KINDS if cells.get(kind).torch_class]

TORCH_DTYPES = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}

# (num_layers, bidirectional, lengths): lengths None = all T; otherwise unsorted, with T itself
# among them only in some cases (pad_packed_sequence must then pad up to total_length)
CONFIGS = [
    (1, False, None),
    (1, True, [3, 5, 1]),
    (2, True, [4, 2, 5]),
    (3, False, [2, 4, 1]),
    (3, True, None),
]


def _case(kind, num_layers, bidirectional, lengths, *, seed=0, dtype=np.float64, T=5, D=3,
          H=4):
    rng = np.random.default_rng(seed)
    cell = cells.get(kind)
    B = 3 if lengths is None else len(lengths)
    directions = 2 if bidirectional else 1
    params = layers.init_params(kind, D, H, num_layers=num_layers, bidirectional=bidirectional,
                                seed=seed, dtype=dtype)
    x = rng.standard_normal((T, B, D)).astype(dtype)
    states = tuple(0.5 * rng.standard_normal((num_layers * directions, B, H)).astype(dtype)
                   for _ in cell.state_names)
    d_final = tuple(rng.standard_normal((num_layers * directions, B, H)).astype(dtype)
                    for _ in cell.state_names)
    return {"kind": kind, "x": x, "params": params, "num_layers": num_layers,
            "bidirectional": bidirectional, "lengths": lengths,
            "state": cell.pack_state(states), "d_final": cell.pack_state(d_final),
            "d_outputs": rng.standard_normal((T, B, directions * H)).astype(dtype)}


def _ours(case):
    outputs, final, cache = layers.forward(
        case["kind"], case["x"], case["params"], num_layers=case["num_layers"],
        bidirectional=case["bidirectional"], lengths=case["lengths"], state=case["state"])
    dx, d_state0, grads = layers.backward(case["d_outputs"], cache, case["d_final"])
    return outputs, final, dx, d_state0, grads


def _theirs(case):
    """The same computation in torch, on a packed sequence when lengths are given."""
    cell = cells.get(case["kind"])
    x = case["x"]
    T, _, D = x.shape
    H = case["params"]["weight_hh_l0"].shape[1]
    module = getattr(torch.nn, cell.torch_class)(
        D, H, num_layers=case["num_layers"], bidirectional=case["bidirectional"])
    module = module.to(TORCH_DTYPES[x.dtype])
    module.load_state_dict({key: torch.from_numpy(value) for key, value in case["params"].items()})
    x_t = torch.tensor(x, requires_grad=True)
    states = [torch.tensor(s, requires_grad=True) for s in cell.unpack_state(case["state"])]
    state = tuple(states) if cell.has_cell_state else states[0]
    if case["lengths"] is None:
        out, final = module(x_t, state)
    else:
        packed = pack_padded_sequence(x_t, torch.tensor(case["lengths"]), enforce_sorted=False)
        packed_out, final = module(packed, state)
        out, _ = pad_packed_sequence(packed_out, total_length=T)
    finals = cell.unpack_state(final)
    loss = (out * torch.from_numpy(case["d_outputs"])).sum() + sum(
        (f * torch.from_numpy(d)).sum()
        for f, d in zip(finals, cell.unpack_state(case["d_final"]), strict=True))
    loss.backward()

    def numpy(tensors):
        return cell.pack_state(tuple(t.detach().numpy() for t in tensors))

    grads = {name: p.grad.numpy() for name, p in module.named_parameters()}
    return (out.detach().numpy(), numpy(finals), x_t.grad.numpy(),
            numpy([s.grad for s in states]), grads)


def _assert_all_close(ours, theirs, tol):
    names = ("outputs", "final_state", "dx", "d_state0")
    for name, a, b in zip(names, ours[:4], theirs[:4], strict=False):
        for part_a, part_b in zip(a if isinstance(a, tuple) else (a,),
                                  b if isinstance(b, tuple) else (b,), strict=True):
            assert part_a.dtype == part_b.dtype, name
            np.testing.assert_allclose(part_a, part_b, rtol=tol, atol=tol, err_msg=name)
    assert list(ours[4]) == list(theirs[4])  # every parameter, in the state_dict's order
    for key in theirs[4]:
        np.testing.assert_allclose(ours[4][key], theirs[4][key], rtol=tol, atol=tol,
                                   err_msg=key)


@pytest.mark.parametrize("kind", TORCH_KINDS)
@pytest.mark.parametrize(("num_layers", "bidirectional", "lengths"), CONFIGS)
def test_float64_matches_torch(kind, num_layers, bidirectional, lengths):
    case = _case(kind, num_layers, bidirectional, lengths)
    _assert_all_close(_ours(case), _theirs(case), 1e-10)


@pytest.mark.parametrize("kind", TORCH_KINDS)
def test_float32_matches_torch_in_float32(kind):
    case = _case(kind, 2, True, [5, 2, 4], seed=1, dtype=np.float32)
    _assert_all_close(_ours(case), _theirs(case), 1e-5)


def test_relu_rnn_matches_torch():
    case = _case("rnn", 2, True, [4, 5, 1], seed=6)
    outputs, h_n, _ = layers.forward("rnn", case["x"], case["params"], num_layers=2,
                                     bidirectional=True, lengths=case["lengths"],
                                     nonlinearity="relu")
    module = torch.nn.RNN(3, 4, num_layers=2, bidirectional=True, nonlinearity="relu").double()
    module.load_state_dict({key: torch.from_numpy(v) for key, v in case["params"].items()})
    packed = pack_padded_sequence(torch.from_numpy(case["x"]), torch.tensor(case["lengths"]),
                                  enforce_sorted=False)
    with torch.no_grad():
        packed_out, expected_h_n = module(packed)
    expected, _ = pad_packed_sequence(packed_out, total_length=5)
    np.testing.assert_allclose(outputs, expected.numpy(), atol=1e-12)
    np.testing.assert_allclose(h_n, expected_h_n.numpy(), atol=1e-12)
    tanh_outputs, _, _ = layers.forward("rnn", case["x"], case["params"], num_layers=2,
                                        bidirectional=True, lengths=case["lengths"])
    assert not np.allclose(outputs, tanh_outputs)


def test_padded_steps_output_zero_and_final_state_is_at_each_own_last_step():
    case = _case("lstm", 1, True, [2, 5, 3], seed=2)
    outputs, (h_n, c_n), _, _, _ = _ours(case)
    H = 4
    for b, length in enumerate(case["lengths"]):
        assert np.all(outputs[length:, b] == 0)
        alone = {**case, "x": case["x"][:length, b:b + 1], "lengths": None,
                 "state": tuple(s[:, b:b + 1] for s in case["state"]),
                 "d_outputs": case["d_outputs"][:length, b:b + 1],
                 "d_final": tuple(s[:, b:b + 1] for s in case["d_final"])}
        out_alone, (h_alone, _), _, _, _ = _ours(alone)
        np.testing.assert_allclose(outputs[:length, b], out_alone[:, 0], atol=1e-13)
        np.testing.assert_allclose(h_n[:, b], h_alone[:, 0], atol=1e-13)
        np.testing.assert_allclose(h_n[0, b], outputs[length - 1, b, :H], atol=1e-13)
        np.testing.assert_allclose(h_n[1, b], outputs[0, b, H:], atol=1e-13)  # reverse: at t=0


def test_any_row_of_the_cell_table_works_without_a_branch_for_its_kind():
    """A row that is not in the table (no torch class, a new name) runs through the same code:
    layers never asks which kind it is running."""
    row = cells.Cell("my_gru", "My GRU", "companion.gru", ("r", "z", "n"), ("h",), None, None,
                     {"reset": "after"})
    case = _case("gru", 2, True, [5, 3, 4], seed=8)
    expected = _ours(case)
    got = _ours({**case, "kind": row})
    for a, b in zip(got[:4], expected[:4], strict=True):
        np.testing.assert_array_equal(a, b)
    assert all(np.array_equal(got[4][key], expected[4][key]) for key in expected[4])
    before, _, _ = layers.forward(row, case["x"], case["params"], num_layers=2,
                                  bidirectional=True, reset="before")
    assert not np.allclose(before, expected[0])  # its options reach the cell


def test_init_params_has_the_names_and_shapes_of_torch_and_is_seeded():
    params = layers.init_params("gru", 3, 5, num_layers=2, bidirectional=True, seed=7)
    module = torch.nn.GRU(3, 5, num_layers=2, bidirectional=True)
    assert list(params) == list(module.state_dict())
    assert all(params[k].shape == tuple(v.shape) for k, v in module.state_dict().items())
    again = layers.init_params("gru", 3, 5, num_layers=2, bidirectional=True, seed=7)
    assert all(np.array_equal(params[k], again[k]) for k in params)
    assert not np.array_equal(params["weight_hh_l0"], params["weight_hh_l0_reverse"])
    assert np.abs(params["weight_ih_l1"]).max() <= 1 / np.sqrt(5)


# --------------------------------------------------------------------------- dropout


def test_dropout_masks_have_the_right_statistics_and_spare_the_last_layer():
    p = 0.3
    params = layers.init_params("lstm", 2, 50, num_layers=3, seed=0)
    x = np.random.default_rng(0).standard_normal((40, 20, 2))
    outputs, _, cache = layers.forward("lstm", x, params, num_layers=3, dropout=p,
                                       rng=np.random.default_rng(1))
    masks = cache["masks"]
    assert len(masks) == 2  # between layers 0-1 and 1-2, never after the last
    for mask in masks:
        assert mask.shape == (40, 20, 50)
        assert set(np.unique(mask)) == {0.0, 1 / (1 - p)}
        assert abs(np.mean(mask == 0) - p) < 0.01  # 40,000 draws: 6 standard deviations
        assert abs(mask.mean() - 1.0) < 0.02  # inverted dropout keeps the expectation
    no_dropout, _, _ = layers.forward("lstm", x, params, num_layers=3)
    assert not np.allclose(outputs, no_dropout)
    one_layer, _, cache = layers.forward("lstm", x, layers.init_params("lstm", 2, 50, seed=0),
                                         dropout=p, rng=np.random.default_rng(1))
    assert cache["masks"] == []  # like torch: no dropout for a single layer


def test_dropout_is_reproducible_with_the_same_rng_seed():
    params = layers.init_params("gru", 2, 3, num_layers=2, seed=0)
    x = np.random.default_rng(0).standard_normal((4, 2, 2))
    runs = [layers.forward("gru", x, params, num_layers=2, dropout=0.5,
                           rng=np.random.default_rng(3))[0] for _ in range(2)]
    np.testing.assert_array_equal(*runs)


@pytest.mark.parametrize("kind", cells.KINDS)
def test_dropout_gradient_matches_finite_differences_with_fixed_masks(kind):
    case = _case(kind, 2, True, [3, 4, 2], seed=3, T=4, D=2, H=2)
    options = {"num_layers": 2, "bidirectional": True, "lengths": case["lengths"],
               "dropout": 0.4}

    inputs = {"x": case["x"].copy(), **{key: v.copy() for key, v in case["params"].items()}}

    def loss(arrays):  # the same seed draws the same masks at every evaluation
        params = {key: arrays[key] for key in case["params"]}
        outputs, _, _ = layers.forward(kind, arrays["x"], params, rng=np.random.default_rng(5),
                                       **options)
        return float(np.sum(outputs * case["d_outputs"]))

    _, _, cache = layers.forward(kind, case["x"], case["params"], rng=np.random.default_rng(5),
                                 **options)
    assert any(np.any(mask == 0) for mask in cache["masks"])
    dx, _, grads = layers.backward(case["d_outputs"], cache)
    analytic = {"x": dx, **{key: grads[key] for key in ("weight_ih_l0", "weight_hh_l0_reverse",
                                                        "bias_ih_l1", "weight_ih_l1")}}
    report = gradcheck(loss, inputs, analytic, rtol=1e-6, atol=1e-8)
    assert report.ok, str(report)


# --------------------------------------------------------------------------- bad input


def _forward(**overrides):
    case = _case("lstm", 2, True, None, seed=4)
    arguments = {"kind": "lstm", "x": case["x"], "params": case["params"], "num_layers": 2,
                 "bidirectional": True, **overrides}
    kind, x, params = arguments.pop("kind"), arguments.pop("x"), arguments.pop("params")
    return layers.forward(kind, x, params, **arguments)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kind": "lsmt"}, r"kind must be one of 'rnn', 'lstm', 'gru'.*got 'lsmt'"),
        ({"num_layers": 3}, r"params does not match num_layers=3, bidirectional=True: missing "
                            r"key\(s\) \['weight_ih_l2'.*unexpected key\(s\) \[\]"),
        ({"bidirectional": False}, r"missing key\(s\) \[\], unexpected key\(s\) "
                                   r"\['bias_hh_l0_reverse'"),
        ({"num_layers": 0}, r"num_layers must be a positive integer, got 0"),
        ({"kind": "gru"}, r"params\['weight_hh_l0'\] must have shape \(3\*H, H\) for a gru"),
        ({"lengths": [5, 0, 2]}, r"lengths must lie in 1..T=5 .*got values from 0 to 5"),
        ({"lengths": [5, 6, 2]}, r"lengths must lie in 1..T=5 .*got values from 2 to 6"),
        ({"lengths": [5, 2]}, r"lengths must have shape \(B=3,\), one length per sequence, got "
                              r"\(2,\)"),
        ({"lengths": [5.0, 2.0, 1.0]}, r"lengths must hold integers, got dtype float64"),
        ({"x": np.zeros((5, 3, 2))}, r"x must have shape \(T, B, D=3\)"),
        ({"state": np.zeros((4, 3, 4))}, r"state must be a pair \(h0, c0\) for a lstm layer"),
        ({"state": (np.zeros((2, 3, 4)), np.zeros((4, 3, 4)))},
         r"h0 must have shape \(num_layers\*num_directions=4, B=3, H=4\), got \(2, 3, 4\)"),
        ({"nonlinearity": "relu"}, r"unexpected option\(s\) \['nonlinearity'\] for a lstm "
                                   r"layer; its options: none"),
        ({"dropout": 1.5}, r"dropout must be a number in \[0, 1\], got 1.5"),
        ({"dropout": 0.2}, r"rng must be a numpy.random.Generator .*got NoneType"),
    ],
)
def test_bad_input_names_the_argument_and_what_was_expected(overrides, message):
    with pytest.raises(ValueError, match=message):
        _forward(**overrides)


def test_a_layer_reading_the_wrong_width_is_named():
    params = layers.init_params("rnn", 3, 4, num_layers=2, bidirectional=True, seed=0)
    params["weight_ih_l1"] = params["weight_ih_l1"][:, :4]  # as if layer 0 had one direction
    with pytest.raises(ValueError, match=r"params\['weight_ih_l1'\] must have shape "
                                         r"\(H=4, num_directions\*H=2\*4\), got \(4, 4\)"):
        layers.forward("rnn", np.zeros((2, 1, 3)), params, num_layers=2, bidirectional=True)


# --------------------------------------------------------------------------- interop


@pytest.mark.parametrize("kind", TORCH_KINDS)
def test_interop_round_trips_layered_modules_with_state_dict_names(kind):
    from companion.interop import from_torch, to_torch

    module_class = getattr(torch.nn, cells.get(kind).torch_class)
    module = module_class(3, 4, num_layers=2, bidirectional=True)
    params = from_torch(module, layered=True)
    assert list(params) == list(module.state_dict())
    assert all(v.dtype == np.float64 for v in params.values())
    single = from_torch(module_class(3, 4), layered=True)
    assert list(single) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert "weight_ih" in from_torch(module_class(3, 4))  # one layer keeps the old names

    fresh = layers.init_params(kind, 3, 4, num_layers=2, bidirectional=True, seed=1)
    to_torch(fresh, module)
    for key, value in module.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), fresh[key].astype(np.float32))
    no_bias = module_class(3, 4, num_layers=2, bidirectional=True, bias=False)
    assert not np.any(from_torch(no_bias, layered=True)["bias_hh_l1_reverse"])


def test_interop_layered_errors_name_what_does_not_match():
    from companion.interop import from_torch, to_torch

    with pytest.raises(ValueError, match=r"keys of its state_dict\(\); missing \['bias_hh_l1'"):
        to_torch(layers.init_params("lstm", 3, 4, bidirectional=True, seed=0),
                 torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True))
    with pytest.raises(ValueError, match=r"hidden_size H=4 but the GRU has D=3, H=5"):
        to_torch(layers.init_params("gru", 3, 4, seed=0), torch.nn.GRU(3, 5))
    with pytest.raises(ValueError, match=r"missing key\(s\) \['weight_ih', 'weight_hh'"):
        to_torch(layers.init_params("lstm", 3, 4, seed=0), torch.nn.LSTMCell(3, 4))
    with pytest.raises(ValueError, match=r"layered=True needs a torch.nn.RNN, LSTM or GRU"):
        from_torch(torch.nn.GRUCell(3, 4), layered=True)
    deep = torch.nn.GRU(3, 4, num_layers=2)  # several layers: torch's names without asking
    assert list(from_torch(deep)) == list(deep.state_dict())


def test_backward_checks_its_upstream_gradients():
    _, _, cache = _forward()
    with pytest.raises(ValueError, match=r"d_outputs must have shape \(T=5, B=3, "
                                         r"num_directions\*H=8\), got \(5, 3, 4\)"):
        layers.backward(np.zeros((5, 3, 4)), cache)
    with pytest.raises(ValueError, match=r"d_final_state must be a pair \(dh_n, dc_n\)"):
        layers.backward(np.zeros((5, 3, 8)), cache, np.zeros((4, 3, 4)))
