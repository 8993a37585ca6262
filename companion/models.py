"""The course's PyTorch models: one recurrent layer of any kind in :mod:`companion.cells`,
with an embedding or not, and a linear readout.

* :class:`CIFG` -- the coupled input-forget gate LSTM as a ``torch.nn`` module (PyTorch has
  none), with ``nn.LSTM``'s interface and parameter names, so :mod:`companion.interop` and
  ``state_dict()`` work on it as on the built-in layers;
* :func:`recurrent_layer` -- ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` / :class:`CIFG` by kind,
  read from the cell table, optionally with an initial forget-gate bias;
* :class:`SequenceModel` -- chapter 6's models (optional embedding, one layer, a readout of
  the last ``n_out`` states);
* :class:`SequenceClassifier` -- chapter 3's classifier of token sequences;
* :class:`CharLM` -- chapter 7's character-level language model.

Every constructor takes a ``seed`` and draws its initial parameters without touching the
global random state.  The training loop that fits them is :func:`companion.training.train`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from companion import cells
from companion.sizing import forget_gate_rows


class _CIFGSequence(torch.autograd.Function):
    r"""The CIFG over a whole sequence with its backward written out (the equations of
    :mod:`companion.cifg`), so that autograd records one node per sequence instead of a dozen
    per step: about ten times faster than the same loop left to autograd at chapter 6's sizes.
    Tested against autograd of the plain torch loop (``tests/_torch_ref.py``)."""

    @staticmethod
    def forward(ctx, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh):
        steps, batch, _ = x.shape
        H = weight_hh.shape[1]
        # Input projections of every step at once; the loop adds the recurrent part.
        acts = torch.addmm(bias_ih + bias_hh, x.reshape(steps * batch, -1), weight_ih.T)
        acts = acts.reshape(steps, batch, 3 * H)  # becomes the activations f, g, o
        hs = x.new_empty(steps + 1, batch, H)
        cs = x.new_empty(steps + 1, batch, H)
        tanh_cs = x.new_empty(steps, batch, H)
        hs[0], cs[0] = h0, c0
        for t in range(steps):
            a = acts[t]
            a += hs[t] @ weight_hh.T
            f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
            torch.sigmoid_(f)
            torch.tanh_(g)
            torch.sigmoid_(o)
            torch.addcmul(g, f, cs[t] - g, out=cs[t + 1])  # f c + (1 - f) g
            torch.tanh(cs[t + 1], out=tanh_cs[t])
            torch.mul(o, tanh_cs[t], out=hs[t + 1])
        ctx.save_for_backward(x, weight_ih, weight_hh, acts, hs, cs, tanh_cs)
        return hs[1:].clone(), hs[steps].clone(), cs[steps].clone()

    @staticmethod
    def backward(ctx, d_outputs, dh_T, dc_T):
        x, weight_ih, weight_hh, acts, hs, cs, tanh_cs = ctx.saved_tensors
        steps, batch, _ = x.shape
        H = weight_hh.shape[1]
        f, g, o = acts[..., :H], acts[..., H:2 * H], acts[..., 2 * H:]
        # The local derivatives of every step at once (they do not depend on the recursion).
        dh_to_da_o = tanh_cs * o * (1 - o)
        dh_to_dc = o * (1 - tanh_cs * tanh_cs)
        dc_to_da_f = (cs[:-1] - g) * f * (1 - f)
        dc_to_da_g = (1 - f) * (1 - g * g)
        f = f.contiguous()
        d_acts = torch.empty_like(acts)
        dh = dh_T.clone() if dh_T is not None else hs.new_zeros(batch, H)
        dc = dc_T.clone() if dc_T is not None else hs.new_zeros(batch, H)
        for t in range(steps - 1, -1, -1):
            if d_outputs is not None:
                dh += d_outputs[t]
            torch.mul(dh, dh_to_da_o[t], out=d_acts[t, :, 2 * H:])
            dc.addcmul_(dh, dh_to_dc[t])  # the gradient reaching c_t
            torch.mul(dc, dc_to_da_f[t], out=d_acts[t, :, :H])
            torch.mul(dc, dc_to_da_g[t], out=d_acts[t, :, H:2 * H])
            dc *= f[t]  # now the gradient reaching c_{t-1}
            dh = d_acts[t] @ weight_hh
        flat = d_acts.reshape(steps * batch, 3 * H)
        dx = (flat @ weight_ih).reshape(x.shape)
        d_bias = flat.sum(dim=0)
        return (dx, dh, dc, flat.T @ x.reshape(steps * batch, -1),
                flat.T @ hs[:-1].reshape(steps * batch, H), d_bias, d_bias.clone())


class CIFG(nn.Module):
    r"""Coupled input-forget gate LSTM layer (Greff et al. 2017), time-major, one layer.

    Same equations as :mod:`companion.cifg` (gate blocks ``f, g, o``, input gate
    :math:`1 - f_t`), in torch, with the backward through time written out in one
    ``torch.autograd.Function`` (PyTorch has no CIFG kernel).

    Args:
        input_size: ``D``.
        hidden_size: ``H``.

    Parameters ``weight_ih_l0`` ``(3H, D)``, ``weight_hh_l0`` ``(3H, H)``, ``bias_ih_l0`` and
    ``bias_hh_l0`` ``(3H,)``, initialised like PyTorch's recurrent layers:
    :math:`U(-1/\sqrt{H}, 1/\sqrt{H})`.

    ``forward(x (T, B, D), state=None)`` returns ``(outputs (T, B, H), (h_T, c_T))`` with
    ``h_T``, ``c_T`` of shape ``(1, B, H)``, like ``nn.LSTM``; ``state`` is such a pair or
    ``None`` (zeros).
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        rows = 3 * hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih_l0 = nn.Parameter(torch.empty(rows))
        self.bias_hh_l0 = nn.Parameter(torch.empty(rows))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def forward(self, x: torch.Tensor, state=None):
        batch = x.shape[1]
        if state is None:
            h0 = c0 = x.new_zeros(batch, self.hidden_size)
        else:
            h0, c0 = state[0][0], state[1][0]
        outputs, h_T, c_T = _CIFGSequence.apply(x, h0, c0, self.weight_ih_l0, self.weight_hh_l0,
                                               self.bias_ih_l0, self.bias_hh_l0)
        return outputs, (h_T[None], c_T[None])


COMPANION_LAYERS: dict[str, type[nn.Module]] = {"cifg": CIFG}
"""The torch layers of the kinds that ``torch.nn`` lacks (``cells.Cell.torch_class is None``)."""


def recurrent_layer(kind: str, input_size: int, hidden_size: int, *,
                    forget_bias: float | None = None) -> nn.Module:
    """One recurrent layer of ``kind`` (a row of :data:`companion.cells.CELLS`).

    Args:
        kind: ``"rnn"`` (tanh), ``"lstm"``, ``"gru"`` or ``"cifg"``.
        input_size, hidden_size: ``D`` and ``H``.
        forget_bias: if set, the forget gate's rows of ``bias_ih_l0`` are set to this value
            and those of ``bias_hh_l0`` to 0, so its total initial bias is exactly this
            (Jozefowicz et al. 2015 recommend 1). Only for kinds with a forget gate.
    """
    cell = cells.get(kind)
    layer_class = (COMPANION_LAYERS[cell.kind] if cell.torch_class is None
                   else getattr(nn, cell.torch_class))
    layer = layer_class(input_size, hidden_size)
    if forget_bias is not None:
        rows = forget_gate_rows(kind, hidden_size)
        with torch.no_grad():
            layer.bias_ih_l0[rows] = forget_bias
            layer.bias_hh_l0[rows] = 0.0
    return layer


class SequenceModel(nn.Module):
    """(optional embedding) -> one recurrent layer -> linear readout (chapter 6).

    Args:
        kind: the recurrent layer's kind (see :func:`recurrent_layer`).
        vocab_size: ``None`` for real-valued inputs of size ``input_size``; otherwise token
            ids are embedded into vectors of size ``input_size``.
        input_size, hidden_size, output_size: ``D``, ``H`` and the readout's size ``C``.
        seed: seeds the initial parameters (embedding, layer, readout, in that order).
        forget_bias: see :func:`recurrent_layer`.

    ``forward(inputs, n_out=1)`` returns the readout of the last ``n_out`` hidden states,
    ``(n_out, B, C)``.
    """

    def __init__(self, kind: str, vocab_size: int | None, input_size: int, hidden_size: int,
                 output_size: int, *, seed: int, forget_bias: float | None = None):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.embedding = (nn.Embedding(vocab_size, input_size)
                              if vocab_size is not None else None)
            self.recurrent = recurrent_layer(kind, input_size, hidden_size,
                                             forget_bias=forget_bias)
            self.readout = nn.Linear(hidden_size, output_size)

    def forward(self, inputs: torch.Tensor, n_out: int = 1) -> torch.Tensor:
        x = self.embedding(inputs) if self.embedding is not None else inputs
        outputs, _ = self.recurrent(x)
        return self.readout(outputs[-n_out:])


class SequenceClassifier(nn.Module):
    """Embedding -> one recurrent layer -> linear readout of the last hidden state::

        tokens (T, B) --Embedding--> (T, B, E) --RNN/LSTM/GRU--> h_T (B, H) --Linear--> (B, C)

    Args:
        vocab_size: number of distinct token ids.
        n_classes: number of classes ``C``.
        cell: the layer's kind: ``"rnn"`` (tanh Elman network), ``"lstm"``, ``"gru"`` or
            ``"cifg"``.
        hidden_size: ``H``.
        embedding_dim: ``E``, size of the word vectors.
        seed: seeds the initial parameters (PyTorch's default initialisation) without
            touching the global random state.
    """

    def __init__(self, vocab_size: int, n_classes: int, *, cell: str = "rnn",
                 hidden_size: int = 32, embedding_dim: int = 16, seed: int = 0):
        super().__init__()
        if cell not in cells.CELLS:
            raise ValueError(f"cell must be one of {sorted(cells.CELLS)}, got {cell!r}")
        for name, value in [("vocab_size", vocab_size), ("n_classes", n_classes),
                            ("hidden_size", hidden_size), ("embedding_dim", embedding_dim)]:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.cell = cell
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.embedding = nn.Embedding(vocab_size, embedding_dim)
            self.recurrent = recurrent_layer(cell, embedding_dim, hidden_size)
            self.readout = nn.Linear(hidden_size, n_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, C)`` for ``tokens`` of shape ``(T, B)`` (time-major)."""
        outputs, _ = self.recurrent(self.embedding(tokens))  # (T, B, H)
        return self.readout(outputs[-1])


class CharLM(nn.Module):
    """Embedding -> one recurrent layer -> linear logits over the vocabulary (chapter 7).

    Args:
        vocab_size: ``V``, the number of characters.
        cell: the layer's kind (``"lstm"``, ``"gru"``, ... any kind of :mod:`companion.cells`).
        hidden_size, embedding_dim: ``H`` and the size of the character vectors.
        seed: seeds the initial parameters without touching the global random state.

    ``forward(tokens (T, B), state=None)`` returns ``(logits (T, B, V), state)``; the state
    is the ``(h, c)`` pair of an LSTM or the ``h`` of a GRU, to be passed back in to continue.
    """

    def __init__(self, vocab_size: int, *, cell: str = "lstm", hidden_size: int = 128,
                 embedding_dim: int = 32, seed: int = 0):
        super().__init__()
        if cell not in cells.CELLS:
            raise ValueError(f"cell must be one of {sorted(cells.CELLS)}, got {cell!r}")
        self.cell = cell
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.embedding = nn.Embedding(vocab_size, embedding_dim)
            self.recurrent = recurrent_layer(cell, embedding_dim, hidden_size)
            self.readout = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens: torch.Tensor, state=None):
        outputs, state = self.recurrent(self.embedding(tokens), state)
        return self.readout(outputs), state
