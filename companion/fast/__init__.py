"""Fast sequence kernels for the NumPy cells: the default path of ``forward`` / ``backward``.

The cell modules (:mod:`companion.rnn`, :mod:`companion.lstm`, :mod:`companion.gru`,
:mod:`companion.cifg`) are written
to be read: the step, its backward and the sequence loop built on them.  Their public
``forward`` / ``backward`` validate the arguments and then hand the work to the kernel of the
same name here (one module per cell kind); ``fast=False`` runs the readable loop instead, and
``tests/test_fast.py`` checks that both give the same numbers to 1e-12 in float64.

The kernels compute the same functions as the loop, equal to round-off (1e-12 in float64 in the
tests; the order of some sums differs), only with fewer NumPy calls:

* the input projections ``W_ih x_t`` of all steps are one ``(T*B, D) @ (D, G*H)`` matmul, and
  so are the input and weight gradients of the backward pass;
* every per-step result is written into a preallocated buffer (``out=``), never a temporary,
  and the large arrays (caches, outputs, ``dx``) are reused from call to call once nothing
  refers to them any more (:mod:`companion.fast._buffers`: a fresh large array costs a page
  fault per 4 KiB, a tenth to a quarter of the LSTM's time);
* the weight rows of the sigmoid gates are scaled by -1, and those of the LSTM's and the CIFG's
  tanh gate by -2 (powers of two: exact in floating point), so that one ``exp``, one add and
  one division give every gate of a step: ``sigmoid(a) = 1 / (1 + exp(-a))`` and
  ``tanh(a) = 2 sigmoid(2a) - 1`` (:mod:`companion.fast._ops`).

Contract of a kernel module (arguments already validated and cast to one dtype by the cell
module; ``state`` and ``d_state`` are tuples ``(h,)`` or ``(h, c)`` of ``(B, H)`` arrays)::

    forward(x, state, params, **options) -> (outputs, final_state, cache)
    backward(d_outputs or None, d_state, cache) -> (dx, d_state0, grads)

``final_state`` and ``d_state0`` are tuples of the same length as ``state``; the cell module
turns them back into its own form (a bare array for one-state cells).  ``backward`` may write
into the arrays of ``d_state``.  ``cache`` always holds ``x``, ``params`` and ``hs``
(``h_0 .. h_T``, ``(T+1, B, H)``), plus ``cs`` for cells with a memory cell, so that code
reading a sequence cache does not depend on the path that made it.

A new cell kind adds one module here with this contract and dispatches to it from its cell
module's ``forward`` / ``backward``.
"""
