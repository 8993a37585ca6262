r"""The course's symbols, in one place: what the notation page writes and the diagrams draw.

``SYMBOLS`` maps a name used in code (``"h_prev"``, ``"c_t"``, ``"i"`` ...) to the LaTeX of its
symbol, exactly as ``book/notation.md`` writes it between dollar signs; ``tests/test_diagrams.py``
checks that every entry appears in a formula on that page, and the cell diagrams of
``companion.diagrams`` take every label from here, so a symbol renamed here changes in the
pictures (and the test then asks for the page to follow).

``label(name)`` returns the symbol ready for matplotlib's mathtext (``"$h_{t-1}$"``).
"""

from __future__ import annotations

SYMBOLS: dict[str, str] = {
    # states and inputs
    "x_t": r"x_t",
    "h_prev": r"h_{t-1}",
    "h_t": r"h_t",
    "c_prev": r"c_{t-1}",
    "c_t": r"c_t",
    # LSTM blocks, in PyTorch's order i, f, g, o
    "i": r"i_t",
    "f": r"f_t",
    "g": r"g_t",
    "o": r"o_t",
    # GRU blocks, in PyTorch's order r, z, n
    "r": r"r_t",
    "z": r"z_t",
    "n": r"n_t",
    # peephole weights (chapter 4's variant)
    "p_i": r"p_i",
    "p_f": r"p_f",
    "p_o": r"p_o",
    # gradients: delta q is dL/dq
    "delta": r"\delta",
    # weights and biases
    "W_ih": r"W_{ih}",
    "W_hh": r"W_{hh}",
    "b_ih": r"b_{ih}",
    "b_hh": r"b_{hh}",
    "W_in": r"W_{in}",
    "W_hn": r"W_{hn}",
    "b_in": r"b_{in}",
    "b_hn": r"b_{hn}",
    # operations
    "sigmoid": r"\sigma",
    "tanh": r"\tanh",
    "odot": r"\odot",
}


def symbol(name: str) -> str:
    """The LaTeX of the symbol called ``name`` (no dollar signs), e.g. ``"h_{t-1}"``."""
    if name not in SYMBOLS:
        raise KeyError(
            f"symbol: unknown name {name!r}; expected one of {', '.join(sorted(SYMBOLS))}"
        )
    return SYMBOLS[name]


def label(name: str) -> str:
    """The symbol called ``name`` as a matplotlib mathtext label, e.g. ``"$h_{t-1}$"``."""
    return f"${symbol(name)}$"
