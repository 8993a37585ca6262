r"""Numerically stable activations and their derivatives.

Every gate of an LSTM or a GRU is a logistic sigmoid and every candidate state is a
:math:`\tanh`: these are the four functions of the book's equations (the readable cell steps
call :func:`sigmoid`; the fast kernels compute both from ``exp``, :mod:`companion.fast._ops`).

.. math::

    \sigma(z) = \frac{1}{1 + e^{-z}}, \qquad
    \sigma'(z) = \sigma(z)\,\bigl(1 - \sigma(z)\bigr) \le \tfrac14,

    \tanh(z) = 2\sigma(2z) - 1, \qquad
    \tanh'(z) = 1 - \tanh^2(z) \le 1.

The derivatives take the *pre-activation* ``z``, as in the book's equations
:math:`\partial \sigma(z)/\partial z`. All four accept any array (or scalar) and keep
float32 as float32.
"""

import numpy as np


def sigmoid(z):
    r"""Logistic sigmoid :math:`\sigma(z) = 1 / (1 + e^{-z})`, without overflow.

    The textbook formula computes ``exp(-z)``, which overflows for ``z < -709`` in float64
    (``z < -88`` in float32). Both branches below only ever exponentiate ``-|z| <= 0``:

    * for ``z >= 0``: :math:`\sigma(z) = 1 / (1 + e^{-z})`;
    * for ``z < 0``:  :math:`\sigma(z) = e^{z} / (1 + e^{z})` (multiply top and bottom by
      :math:`e^{z}`).

    Shape: any; the output has the shape and floating dtype of ``z``.
    """
    z = np.asarray(z)
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.float64)
    e = np.exp(-np.abs(z))  # in (0, 1]: can never overflow
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_prime(z):
    r"""Derivative of the sigmoid with respect to its pre-activation ``z``.

    :math:`\sigma'(z) = \sigma(z)\,(1 - \sigma(z))`; its maximum is
    :math:`\sigma'(0) = 1/4`.
    """
    s = sigmoid(z)
    return s * (1 - s)


def tanh(z):
    r""":math:`\tanh(z)`. NumPy's ``np.tanh`` is already stable (it saturates at ±1)."""
    return np.tanh(np.asarray(z))


def tanh_prime(z):
    r"""Derivative of :math:`\tanh` with respect to its pre-activation ``z``.

    :math:`\tanh'(z) = 1 - \tanh^2(z)`; its maximum is :math:`\tanh'(0) = 1`.
    """
    t = np.tanh(np.asarray(z))
    return 1 - t * t
