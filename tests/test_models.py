"""companion.models: the torch CIFG layer equals the NumPy companion.cifg, forward and
backward; recurrent layers of every kind come from the cell table, with a forget-gate bias
where the kind has a forget gate; the course's models accept every kind."""

import numpy as np
import pytest
import torch

from companion import cells, cifg, sizing
from companion.interop import from_torch
from companion.models import CIFG, CharLM, SequenceClassifier, SequenceModel, recurrent_layer


def _numpy_params(module):
    return {key: value.detach().numpy() for key, value in module.state_dict().items()}


def test_cifg_layer_equals_the_numpy_cell_forward_and_backward():
    torch.manual_seed(0)
    layer = CIFG(3, 5).double()
    rng = np.random.default_rng(0)
    T, B = 6, 2
    x = rng.standard_normal((T, B, 3))
    h0, c0 = 0.5 * rng.standard_normal((2, B, 5))
    d_outputs, dh_T, dc_T = rng.standard_normal((T, B, 5)), *rng.standard_normal((2, B, 5))

    x_t = torch.tensor(x, requires_grad=True)
    h0_t = torch.tensor(h0[None], requires_grad=True)
    c0_t = torch.tensor(c0[None], requires_grad=True)
    outputs, (h_T, c_T) = layer(x_t, (h0_t, c0_t))
    loss = ((outputs * torch.from_numpy(d_outputs)).sum() + (h_T[0] * torch.from_numpy(dh_T)).sum()
            + (c_T[0] * torch.from_numpy(dc_T)).sum())
    loss.backward()

    params = {key.removesuffix("_l0"): value for key, value in _numpy_params(layer).items()}
    ours, (h_ref, c_ref), cache = cifg.forward(x, params, (h0, c0))
    dx, (dh0, dc0), grads = cifg.backward(d_outputs, cache, (dh_T, dc_T))
    np.testing.assert_allclose(outputs.detach().numpy(), ours, atol=1e-12)
    np.testing.assert_allclose(c_T[0].detach().numpy(), c_ref, atol=1e-12)
    np.testing.assert_allclose(x_t.grad.numpy(), dx, atol=1e-12)
    np.testing.assert_allclose(h0_t.grad[0].numpy(), dh0, atol=1e-12)
    np.testing.assert_allclose(c0_t.grad[0].numpy(), dc0, atol=1e-12)
    for key, value in grads.items():
        np.testing.assert_allclose(getattr(layer, key + "_l0").grad.numpy(), value, atol=1e-12)
    assert from_torch(layer).keys() == params.keys()


def test_cifg_layer_starts_from_zeros_and_is_initialised_like_torch():
    torch.manual_seed(1)
    layer = CIFG(2, 16)
    bound = 1 / 4
    for value in layer.parameters():
        assert value.abs().max() <= bound and value.abs().max() > 0.8 * bound
    x = torch.randn(3, 2, 2)
    zeros = torch.zeros(1, 2, 16)
    torch.testing.assert_close(layer(x)[0], layer(x, (zeros, zeros))[0])


@pytest.mark.parametrize("kind", cells.KINDS)
def test_recurrent_layer_of_every_kind(kind):
    cell = cells.get(kind)
    layer = recurrent_layer(kind, 3, 4)
    assert layer.weight_hh_l0.shape == (cell.gate_count * 4, 4)
    if cell.torch_class is not None:
        assert type(layer) is getattr(torch.nn, cell.torch_class)
    outputs, state = layer(torch.randn(5, 2, 3))
    assert outputs.shape == (5, 2, 4)
    assert len(state) == 2 if cell.has_cell_state else state.shape == (1, 2, 4)


@pytest.mark.parametrize(("kind", "rows"), [("lstm", slice(4, 8)), ("cifg", slice(0, 4))])
def test_forget_bias_sets_the_forget_rows_only(kind, rows):
    torch.manual_seed(0)
    plain = recurrent_layer(kind, 3, 4)
    torch.manual_seed(0)
    biased = recurrent_layer(kind, 3, 4, forget_bias=1.0)
    assert sizing.forget_gate_rows(kind, 4) == rows
    total = (biased.bias_ih_l0 + biased.bias_hh_l0).detach()
    torch.testing.assert_close(total[rows], torch.ones(4))
    keep = torch.ones(total.shape[0], dtype=torch.bool)
    keep[rows] = False
    torch.testing.assert_close(biased.bias_ih_l0[keep], plain.bias_ih_l0[keep])
    torch.testing.assert_close(biased.weight_hh_l0, plain.weight_hh_l0)


@pytest.mark.parametrize("kind", ["rnn", "gru"])
def test_forget_bias_needs_a_forget_gate(kind):
    with pytest.raises(ValueError, match=rf"needs a cell with a forget gate \(lstm, cifg\), "
                                         rf"got '{kind}'"):
        recurrent_layer(kind, 3, 4, forget_bias=1.0)


@pytest.mark.parametrize("kind", cells.KINDS)
def test_models_accept_every_kind_and_leave_the_global_rng_alone(kind):
    torch.manual_seed(7)
    before = torch.rand(1)
    torch.manual_seed(7)
    classifier = SequenceClassifier(10, 3, cell=kind, hidden_size=6, seed=1)
    language = CharLM(12, cell=kind, hidden_size=6, embedding_dim=4, seed=1)
    sequence = SequenceModel(kind, None, 2, 6, 1, seed=1)
    assert torch.rand(1) == before
    tokens = torch.randint(10, (4, 5))
    assert classifier(tokens).shape == (5, 3)
    logits, state = language(tokens)
    assert logits.shape == (4, 5, 12)
    language(tokens[:1], state)  # the state carries on
    assert sequence(torch.randn(4, 5, 2), n_out=2).shape == (2, 5, 1)
    again = SequenceClassifier(10, 3, cell=kind, hidden_size=6, seed=1)
    torch.testing.assert_close(again(tokens), classifier(tokens))


def test_unknown_kinds_are_refused():
    with pytest.raises(ValueError, match="cell must be one of"):
        CharLM(10, cell="transformer")
    with pytest.raises(ValueError, match="kind must be one of"):
        recurrent_layer("lsmt", 2, 3)
