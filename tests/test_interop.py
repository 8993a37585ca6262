"""companion.interop: parameters to and from torch.nn recurrent modules."""

import numpy as np
import pytest
import torch

from companion import cells, gru, lstm, rnn
from companion.interop import forward_kwargs, from_torch, module_kind, to_torch
from companion.models import recurrent_layer

SEQUENCE_MODULES = [type(recurrent_layer(kind, 1, 1)) for kind in cells.KINDS]
CELL_MODULES = [getattr(torch.nn, cell.torch_cell_class) for cell in cells.CELLS.values()
                if cell.torch_cell_class is not None]


@pytest.mark.parametrize("cls", SEQUENCE_MODULES + CELL_MODULES)
def test_from_torch_gives_float64_copies_with_torch_values(cls):
    torch.manual_seed(0)
    module = cls(3, 5)
    params = from_torch(module)
    suffix = "" if cls in CELL_MODULES else "_l0"
    gate_count = cells.get(module_kind(module)).gate_count
    assert set(params) == {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}
    assert params["weight_ih"].shape == (gate_count * 5, 3)
    for key, value in params.items():
        assert value.dtype == np.float64
        tensor = getattr(module, key + suffix)
        np.testing.assert_array_equal(value, tensor.detach().double().numpy())
        value += 1.0  # a copy: the module is untouched
        assert not np.allclose(value, tensor.detach().double().numpy())


@pytest.mark.parametrize("cls", SEQUENCE_MODULES + CELL_MODULES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_to_torch_round_trip_keeps_module_dtype(cls, dtype):
    module = cls(4, 2).to(dtype)
    kind = module_kind(module)
    params = cells.get(kind).module.init_params(4, 2, seed=1)
    assert to_torch(params, module) is module
    suffix = "" if cls in CELL_MODULES else "_l0"
    for key in params:
        assert getattr(module, key + suffix).dtype == dtype
    back = from_torch(module)
    for key in params:
        tol = 0 if dtype == torch.float64 else 1e-7
        np.testing.assert_allclose(back[key], params[key], atol=tol, rtol=0)


@pytest.mark.parametrize("batch_first", [False, True])
def test_batch_first_modules_are_fine(batch_first):
    torch.manual_seed(1)
    module = torch.nn.GRU(3, 4, batch_first=batch_first).double()
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    outputs, _, _ = gru.forward(x, from_torch(module))
    x_torch = torch.from_numpy(x.transpose(1, 0, 2) if batch_first else x)
    expected = module(x_torch)[0].detach().numpy()
    if batch_first:
        expected = expected.transpose(1, 0, 2)
    np.testing.assert_allclose(outputs, expected, atol=1e-12)


def test_every_kind_is_recognised_and_runs_like_its_companion_module():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 2, 3))
    for kind in cells.KINDS:
        torch.manual_seed(0)
        module = recurrent_layer(kind, 3, 5).double()
        assert module_kind(module) == kind
        outputs, _, _ = cells.get(kind).module.forward(x, from_torch(module),
                                                       **forward_kwargs(module))
        np.testing.assert_allclose(outputs, module(torch.from_numpy(x))[0].detach().numpy(),
                                   atol=1e-12)


def test_relu_rnn_forward_kwargs():
    module = torch.nn.RNN(2, 3, nonlinearity="relu").double()
    assert forward_kwargs(module) == {"nonlinearity": "relu"}
    assert forward_kwargs(torch.nn.LSTM(2, 3)) == {}
    x = np.random.default_rng(1).standard_normal((4, 2, 2))
    outputs, _, _ = rnn.forward(x, from_torch(module), **forward_kwargs(module))
    np.testing.assert_allclose(outputs, module(torch.from_numpy(x))[0].detach().numpy(),
                               atol=1e-12)


@pytest.mark.parametrize(
    ("module", "match"),
    [
        (torch.nn.LSTM(2, 3, proj_size=2), "proj_size=2"),
        (torch.nn.Linear(2, 3), "Linear"),
    ],
)
def test_unsupported_modules_raise(module, match):
    with pytest.raises(ValueError, match=match):
        from_torch(module)
    with pytest.raises(ValueError, match=match):
        to_torch(lstm.init_params(2, 3), module)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize(("num_layers", "bidirectional"), [(2, False), (1, True), (3, True)])
def test_deep_and_bidirectional_modules_use_the_state_dict_names(kind, num_layers,
                                                                 bidirectional):
    cls = getattr(torch.nn, cells.get(kind).torch_class)
    torch.manual_seed(0)
    module = cls(3, 4, num_layers=num_layers, bidirectional=bidirectional)
    params = from_torch(module)
    state = {key: value.double().numpy() for key, value in module.state_dict().items()}
    assert params.keys() == state.keys()
    for key, value in state.items():
        np.testing.assert_array_equal(params[key], value)
    other = cls(3, 4, num_layers=num_layers, bidirectional=bidirectional)
    to_torch(params, other)
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(other(x)[0], module(x)[0])
    if num_layers > 1:
        width = 8 if bidirectional else 4
        assert params["weight_ih_l1"].shape == (cells.get(kind).gate_count * 4, width)


def test_deep_module_errors_name_the_layer_and_the_keys():
    module = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)
    params = from_torch(module)
    params["weight_ih_l1_reverse"] = np.zeros((12, 4))
    with pytest.raises(ValueError, match=r"\(layer l1_reverse\) have input_size D=4, "
                                         r"hidden_size H=4 but the GRU has D=8, H=4"):
        to_torch(params, module)
    del params["bias_hh_l1"]
    with pytest.raises(ValueError, match=r"missing \['bias_hh_l1'\], unexpected \[\]"):
        to_torch(params, module)
    with pytest.raises(ValueError, match=r"missing \[.*'weight_ih_l0'.*\], unexpected "
                                         r"\['bias_hh', 'bias_ih', 'weight_hh', 'weight_ih'\]"):
        to_torch(gru.init_params(3, 4), module)


def test_bias_false():
    module = torch.nn.LSTM(2, 3, bias=False)
    params = from_torch(module)
    np.testing.assert_array_equal(params["bias_ih"], np.zeros(12))
    to_torch(params, module)  # zero biases are fine
    params["bias_hh"][0] = 1.0
    with pytest.raises(ValueError, match=r"bias_hh.*bias=False"):
        to_torch(params, module)


def test_to_torch_rejects_peepholes_and_wrong_sizes():
    with pytest.raises(ValueError, match="peephole"):
        to_torch(lstm.init_params(2, 3, peephole=True), torch.nn.LSTM(2, 3))
    with pytest.raises(ValueError, match=r"D=2, hidden_size H=3 but the LSTM has D=2, H=4"):
        to_torch(lstm.init_params(2, 3), torch.nn.LSTM(2, 4))
    with pytest.raises(ValueError, match=r"weight_hh.*\(4\*H, H\)"):
        to_torch(gru.init_params(2, 3), torch.nn.LSTM(2, 3))
    with pytest.raises(ValueError, match=r"weight_hh.*\(3\*H, H\)"):
        to_torch(lstm.init_params(2, 3), recurrent_layer("cifg", 2, 3))
