r"""Cell diagrams drawn by code: the LSTM, its walk-through, its backward view, peepholes, the GRU.

Every function returns a ``matplotlib.figure.Figure``. The pictures follow the course's
conventions, not a tutorial's:

* every label is a symbol from ``companion.notation`` (the source of the notation page), so a
  renamed symbol changes in the pictures too;
* the weights are drawn as PyTorch stores them: one bar for the stacked products
  ``W_ih x_t + b_ih + W_hh h_{t-1} + b_hh``, cut into blocks in PyTorch's order (LSTM i, f, g, o;
  GRU r, z, n). Two arrows entering the bar are two separate matrix products, added; nothing
  is concatenated;
* a coloured rounded box is a layer with an activation (sky blue: sigmoid, yellow: tanh); a
  white one is the operation written in it (a matrix product such as ``W_hn``, or ``1 -``); a
  circle is an elementwise operation with no weights (product, sum);
* colours are the Okabe & Ito palette of ``companion.plots`` (cell state orange, hidden state
  blue, input green, gradients vermillion, peepholes purple), and every element also differs
  by shape or line style, so the pictures read in greyscale;
* text is at least ``MIN_FONT_SIZE`` points on figures at most ``MAX_WIDTH_IN`` inches wide, so
  that it stays readable when the book scales a figure down to a phone's width; side-by-side
  variants are stacked vertically for the same reason.

``highlight`` arguments name the elements to draw at full strength; every other element is
faded to ``FADED_ALPHA``. Each drawn artist carries its element's name as its ``gid``, and a
returned figure keeps its drawing as ``figure.drawing`` (``figure.drawings``, one per panel, for
stacked panels), whose ``elements`` map each name to its artists: tests (and curious readers)
can check what was drawn and what was highlighted.

Look at them all with ``python -m companion.diagrams OUT_DIR``, which saves one PNG per figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import matplotlib.patheffects as path_effects
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle

from companion.notation import label, symbol
from companion.plots import OKABE_ITO

COLORS = {
    "cell": OKABE_ITO["orange"],
    "hidden": OKABE_ITO["blue"],
    "input": OKABE_ITO["green"],
    "gradient": OKABE_ITO["vermillion"],
    "peephole": OKABE_ITO["purple"],
    "sigmoid": OKABE_ITO["sky"],
    "tanh": OKABE_ITO["yellow"],
    "ink": OKABE_ITO["black"],
    "paper": "#FFFFFF",
}
"""What each colour means; every colour is from the Okabe & Ito palette (or white)."""

FADED_ALPHA = 0.18
MIN_FONT_SIZE = 13.0
MAX_WIDTH_IN = 5.8
_FONT = 18.0  # wire labels
_BOX_FONT = 15.0  # text inside boxes and circles
_TITLE_FONT = 16.0
_UNITS_TO_INCHES = 0.44  # figure inches per unit of the drawing's coordinates
_R = 0.3  # radius of an operation circle
_BOX_W, _BOX_H = 1.45, 0.7
_LW = 2.6

LSTM_BLOCKS = ("i", "f", "g", "o")  # PyTorch's order of the rows of weight_ih / weight_hh
GRU_BLOCKS = ("r", "z", "n")
LSTM_STEPS = {
    1: ("what to erase", "(4.1)"),
    2: ("what to write", "(4.2), (4.3)"),
    3: ("erase, then write", "(4.4)"),
    4: ("what to show", "(4.5), (4.6)"),
}


class _Drawing:
    """Draws named elements on one axis; elements outside ``highlight`` are faded."""

    def __init__(self, ax, highlight: Iterable[str] | None = None):
        self.ax = ax
        self.highlight = None if highlight is None else set(highlight)
        self.elements: dict[str, list] = {}
        self.enclosed: list[tuple] = []  # (patch, text) pairs: the text must fit in the patch

    def _finish(self, name: str, *artists) -> None:
        alpha = self.alpha(name)
        for artist in artists:
            artist.set_gid(name)
            artist.set_alpha(alpha)
        self.elements.setdefault(name, []).extend(artists)

    def alpha(self, name: str) -> float:
        return 1.0 if self.highlight is None or name in self.highlight else FADED_ALPHA

    def wire(self, name: str, points: Sequence[tuple[float, float]], color: str, *,
             arrow: bool = True, linestyle="-", linewidth: float = _LW) -> None:
        """A polyline from ``points[0]`` to ``points[-1]``, with an arrowhead at the end.

        A white halo under the line makes crossings read as one wire passing over another.
        """
        xs, ys = zip(*points, strict=True)
        (line,) = self.ax.plot(xs, ys, color=color, linewidth=linewidth, linestyle=linestyle,
                               solid_capstyle="butt", zorder=2)
        line.set_path_effects([path_effects.Stroke(linewidth=linewidth + 4,
                                                   foreground=COLORS["paper"]),
                               path_effects.Normal()])
        artists = [line]
        if arrow:
            head = FancyArrowPatch(points[-2], points[-1], arrowstyle="-|>", color=color,
                                   mutation_scale=16, linewidth=0, shrinkA=0, shrinkB=0,
                                   zorder=3)
            # only the head: a zero-width shaft hidden under the line drawn above
            self.ax.add_patch(head)
            artists.append(head)
        self._finish(name, *artists)

    def text(self, name: str, xy: tuple[float, float], text: str, *, color: str | None = None,
             size: float = _FONT, **kwargs) -> None:
        kwargs.setdefault("ha", "center")
        kwargs.setdefault("va", "center")
        artist = self.ax.text(*xy, text, color=color or COLORS["ink"], fontsize=size, zorder=5,
                              **kwargs)
        self._finish(name, artist)

    def box(self, name: str, center: tuple[float, float], text: str, fill: str, *,
            width: float = _BOX_W, height: float = _BOX_H) -> None:
        x, y = center
        patch = FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                               boxstyle="round,pad=0,rounding_size=0.15", facecolor=fill,
                               edgecolor=COLORS["ink"], linewidth=1.5, zorder=4)
        self.ax.add_patch(patch)
        self._finish(name, patch)
        self.text(name, center, text, size=_BOX_FONT)
        self.enclosed.append((patch, self.elements[name][-1]))

    def op(self, name: str, center: tuple[float, float], text: str) -> None:
        patch = Circle(center, _R, facecolor=COLORS["paper"], edgecolor=COLORS["ink"],
                       linewidth=1.5, zorder=4)
        self.ax.add_patch(patch)
        self._finish(name, patch)
        self.text(name, center, text, size=_BOX_FONT)
        self.enclosed.append((patch, self.elements[name][-1]))

    def bar(self, name: str, left: float, right: float, y: float, text: str,
            height: float = 0.8) -> None:
        patch = Rectangle((left, y - height / 2), right - left, height,
                          facecolor=COLORS["paper"], edgecolor=COLORS["ink"], linewidth=1.5,
                          zorder=4)
        self.ax.add_patch(patch)
        self._finish(name, patch)
        self.text(name, ((left + right) / 2, y), text, size=_BOX_FONT)
        self.enclosed.append((patch, self.elements[name][-1]))


def _new_axes(height_units: float, width_units: float, nrows: int = 1):
    width_in = min(MAX_WIDTH_IN, width_units * _UNITS_TO_INCHES)
    scale = width_in / width_units
    fig, axes = plt.subplots(nrows, 1, figsize=(width_in, nrows * height_units * scale),
                             layout="constrained", squeeze=False)
    for ax in axes[:, 0]:
        ax.set_axis_off()
        ax.set_aspect("equal")
    return fig, list(axes[:, 0])


def _math(*names: str, between: str = " ") -> str:
    return "$" + between.join(symbol(name) for name in names) + "$"


def _odot() -> str:
    return label("odot")


# ---------------------------------------------------------------------------------------------
# LSTM
# ---------------------------------------------------------------------------------------------

_LSTM_X = {"i": 2.4, "f": 4.1, "g": 5.8, "o": 7.5}
_BELT_Y, _GATE_Y, _BAR_Y = 7.0, 3.7, 2.0
_LSTM_LIMITS = ((-1.1, 11.7), (-0.7, 8.0))


def lstm_step_elements() -> dict[int, set[str]]:
    """The elements each step of chapter 4's walk-through highlights (steps 1-4)."""
    inputs = {"h_in", "x_in"}
    return {
        1: inputs | {"bar_f", "act_f", "wire_f", "mul_f", "belt_in"},
        2: inputs | {"bar_i", "act_i", "wire_i", "bar_g", "act_g", "wire_g", "mul_ig"},
        3: {"belt_in", "mul_f", "belt_mid", "add", "wire_ig", "mul_ig", "belt_out"},
        4: inputs | {"bar_o", "act_o", "wire_o", "tap_c", "tanh_c", "wire_tanh_c", "mul_o",
                     "h_out"},
    }


def _draw_lstm(d: _Drawing, *, peephole: bool = False,
               values: dict[str, float] | None = None) -> None:
    x = _LSTM_X
    top = _GATE_Y + _BOX_H / 2
    ink = COLORS["ink"]
    # the belt: c_{t-1} -> x f_t -> + i_t g_t -> c_t
    d.text("belt_in", (0.4, _BELT_Y), label("c_prev"), ha="right", color=COLORS["cell"])
    d.wire("belt_in", [(0.5, _BELT_Y), (x["f"] - _R, _BELT_Y)], COLORS["cell"], linewidth=4)
    d.op("mul_f", (x["f"], _BELT_Y), _odot())
    d.wire("belt_mid", [(x["f"] + _R, _BELT_Y), (x["g"] - _R, _BELT_Y)], COLORS["cell"],
           linewidth=4)
    d.op("add", (x["g"], _BELT_Y), "$+$")
    d.wire("belt_out", [(x["g"] + _R, _BELT_Y), (10.4, _BELT_Y)], COLORS["cell"], linewidth=4)
    d.text("belt_out", (10.5, _BELT_Y), label("c_t"), ha="left", color=COLORS["cell"])
    # inputs into the stacked products, blocks in PyTorch's order
    left, right = x["i"] - 0.85, x["o"] + 0.85
    d.wire("h_in", [(0.5, _BAR_Y + 0.2), (left, _BAR_Y + 0.2)], COLORS["hidden"])
    d.text("h_in", (0.4, _BAR_Y + 0.2), label("h_prev"), ha="right", color=COLORS["hidden"])
    d.wire("x_in", [(0.9, -0.1), (0.9, _BAR_Y - 0.2), (left, _BAR_Y - 0.2)], COLORS["input"])
    d.text("x_in", (0.9, -0.2), label("x_t"), va="top", color=COLORS["input"])
    for block in LSTM_BLOCKS:
        d.bar(f"bar_{block}", x[block] - 0.85, x[block] + 0.85, _BAR_Y, block)
    if values is None:
        d.text("bar", ((left + right) / 2, _BAR_Y - 0.85),
               rf"${symbol('W_ih')}{symbol('x_t')} + {symbol('W_hh')}{symbol('h_prev')}"
               rf" + {symbol('b_ih')} + {symbol('b_hh')}$", va="top", size=_BOX_FONT)
    else:
        _draw_lstm_values(d, values, left)
    activations = {"i": "sigmoid", "f": "sigmoid", "g": "tanh", "o": "sigmoid"}
    for block, activation in activations.items():
        d.wire(f"act_{block}", [(x[block], _BAR_Y + 0.4), (x[block], _GATE_Y - _BOX_H / 2)], ink,
               linewidth=1.5)
        d.box(f"act_{block}", (x[block], _GATE_Y), label(activation), COLORS[activation])
    # forget gate up to the belt; input gate and candidate to their product, then to the sum
    mul_ig_y = 5.4
    d.wire("wire_f", [(x["f"], top), (x["f"], _BELT_Y - _R)], ink)
    d.text("wire_f", (x["f"] + 0.12, 4.55), label("f"), ha="left")
    d.wire("wire_i", [(x["i"], top), (x["i"], mul_ig_y), (x["g"] - _R, mul_ig_y)], ink)
    d.text("wire_i", (x["i"] - 0.12, 4.55), label("i"), ha="right")
    d.wire("wire_g", [(x["g"], top), (x["g"], mul_ig_y - _R)], ink)
    d.text("wire_g", (x["g"] + 0.12, 4.55), label("g"), ha="left")
    d.op("mul_ig", (x["g"], mul_ig_y), _odot())
    d.wire("wire_ig", [(x["g"], mul_ig_y + _R), (x["g"], _BELT_Y - _R)], ink)
    # output: tanh(c_t) hangs from the belt, scaled by o_t, leaves as h_t
    x_out, mul_o_y = 9.1, 4.6
    d.wire("tap_c", [(x_out, _BELT_Y), (x_out, 6.15 + 0.3)], COLORS["cell"], linewidth=2.2)
    d.box("tanh_c", (x_out, 6.15), label("tanh"), COLORS["tanh"], height=0.6)
    d.wire("wire_tanh_c", [(x_out, 6.15 - 0.3), (x_out, mul_o_y + _R)], ink)
    d.wire("wire_o", [(x["o"], top), (x["o"], mul_o_y), (x_out - _R, mul_o_y)], ink)
    d.text("wire_o", (x["o"] - 0.12, 4.3), label("o"), ha="right")
    d.op("mul_o", (x_out, mul_o_y), _odot())
    d.wire("h_out", [(x_out + _R, mul_o_y), (10.1, mul_o_y), (10.1, _BAR_Y + 0.2),
                     (10.4, _BAR_Y + 0.2)], COLORS["hidden"])
    d.text("h_out", (10.5, _BAR_Y + 0.2), label("h_t"), ha="left", color=COLORS["hidden"])
    if peephole:
        _draw_peepholes(d)


LSTM_VALUE_NAMES = ("c_prev", "i", "f", "g", "o", "c_t", "h_t")


def _number(value: float) -> str:
    return f"{value:.2f}".replace("-", "\N{MINUS SIGN}")


def _draw_lstm_values(d: _Drawing, values: dict[str, float], left: float) -> None:
    """One unit's numbers: each block's output under the bar, the states under their labels."""
    for block in LSTM_BLOCKS:
        d.text(f"value_{block}", (_LSTM_X[block], _BAR_Y - 0.75), label(block), va="top")
        d.text(f"value_{block}", (_LSTM_X[block], _BAR_Y - 1.35), _number(values[block]),
               va="top", fontweight="bold", size=_BOX_FONT - 1)
    where = {"c_prev": ((0.4, _BELT_Y - 0.45), "right"), "c_t": ((10.5, _BELT_Y - 0.45), "left"),
             "h_t": ((10.5, _BAR_Y - 0.25), "left")}
    for name, (xy, ha) in where.items():
        d.text(f"value_{name}", xy, _number(values[name]), ha=ha, va="top", fontweight="bold",
               size=_BOX_FONT - 1)


def _draw_peepholes(d: _Drawing) -> None:
    x = _LSTM_X
    color = COLORS["peephole"]
    taps = {"i": 1.2, "f": 3.3, "o": 6.75}  # where each peephole leaves the belt
    for block, tap in taps.items():
        d.wire(f"peep_{block}", [(tap, _BELT_Y), (tap, _GATE_Y), (x[block] - _BOX_W / 2, _GATE_Y)],
               color, linestyle=(0, (3, 1.5)), linewidth=2.2)
        d.text(f"peep_{block}", (tap - 0.1, 6.2), f"${symbol('p_' + block)}$", ha="right",
               color=color)


def _title(ax, text: str, **kwargs) -> None:
    ax.set_title(text, **kwargs).set_gid("title")


def _finish_axes(ax, limits) -> None:
    (x0, x1), (y0, y1) = limits
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)


def lstm_cell(highlight: Iterable[str] | None = None, *, peephole: bool = False,
              title: str | None = None) -> Figure:
    """One LSTM step, eqs. (4.1)-(4.6), in PyTorch's layout (blocks i, f, g, o).

    Args:
        highlight: names of the elements to draw at full strength (the rest is faded); None
            draws everything at full strength. ``lstm_step_elements()`` lists the names.
        peephole: add the peephole connections (4.15)-(4.16): i and f read c_{t-1}, o reads c_t.
        title: an optional title above the drawing.
    """
    (x0, x1), (y0, y1) = _LSTM_LIMITS
    fig, (ax,) = _new_axes(y1 - y0 + (0.8 if title else 0), x1 - x0)
    d = _Drawing(ax, highlight)
    _draw_lstm(d, peephole=peephole)
    _finish_axes(ax, _LSTM_LIMITS)
    if title:
        _title(ax, title, fontsize=_TITLE_FONT, loc="left")
    fig.drawing = d
    return fig


def lstm_cell_values(values: dict[str, float], title: str | None = None) -> Figure:
    """The LSTM cell with one unit's numbers at one step written on it (eqs. (4.1)-(4.6)).

    Args:
        values: floats for ``"c_prev"``, ``"i"``, ``"f"``, ``"g"``, ``"o"``, ``"c_t"`` and
            ``"h_t"`` (``LSTM_VALUE_NAMES``): the unit's gates, candidate and states.
        title: an optional title above the drawing.
    """
    missing = [name for name in LSTM_VALUE_NAMES if name not in values]
    if missing:
        raise ValueError(f"lstm_cell_values: values must give {', '.join(LSTM_VALUE_NAMES)}; "
                         f"missing {', '.join(missing)}")
    values = {name: float(values[name]) for name in LSTM_VALUE_NAMES}
    (x0, x1), (y0, y1) = _LSTM_LIMITS
    fig, (ax,) = _new_axes(y1 - y0 + (0.8 if title else 0), x1 - x0)
    d = _Drawing(ax)
    _draw_lstm(d, values=values)
    _finish_axes(ax, _LSTM_LIMITS)
    if title:
        _title(ax, title, fontsize=_TITLE_FONT, loc="left")
    fig.drawing = d
    return fig


def lstm_walkthrough_step(step: int) -> Figure:
    """The LSTM cell with step ``step`` (1-4) of chapter 4's walk-through highlighted."""
    if step not in LSTM_STEPS:
        raise ValueError(f"lstm_walkthrough_step: step must be 1, 2, 3 or 4, got {step!r}")
    what, equations = LSTM_STEPS[step]
    return lstm_cell(lstm_step_elements()[step], title=f"Step {step}: {what} {equations}")


def peephole_lstm_cell() -> Figure:
    """The LSTM with peepholes, eqs. (4.15)-(4.17): the peepholes at full strength."""
    return lstm_cell({"peep_i", "peep_f", "peep_o", "belt_in", "belt_mid", "belt_out", "add",
                      "mul_f", "act_i", "act_f", "act_o"}, peephole=True)


# ---------------------------------------------------------------------------------------------
# Backward view: the LSTM's carousel against the RNN's recurrent path
# ---------------------------------------------------------------------------------------------

_RNN_TANH_X = 7.5

def _draw_rnn(d: _Drawing) -> None:
    y = 1.6
    ink = COLORS["ink"]
    d.text("h_in", (0.4, y), label("h_prev"), ha="right", color=COLORS["hidden"])
    d.wire("h_in", [(0.5, y), (0.9, y)], COLORS["hidden"])
    d.wire("x_in", [(3.5, -0.3), (3.5, y - 0.4)], COLORS["input"])
    d.text("x_in", (3.7, -0.2), label("x_t"), ha="left", color=COLORS["input"])
    d.bar("bar", 0.9, 6.4, y, rf"${symbol('W_hh')}{symbol('h_prev')} + {symbol('W_ih')}"
          rf"{symbol('x_t')} + b$")
    d.wire("wire_a", [(6.4, y), (_RNN_TANH_X - _BOX_W / 2, y)], ink)
    d.box("act", (_RNN_TANH_X, y), label("tanh"), COLORS["tanh"])
    d.wire("h_out", [(_RNN_TANH_X + _BOX_W / 2, y), (10.4, y)], COLORS["hidden"])
    d.text("h_out", (10.5, y), label("h_t"), ha="left", color=COLORS["hidden"])


def _gradient_arrow(d: _Drawing, name: str, start, end) -> None:
    d.wire(name, [start, end], COLORS["gradient"], linestyle=(0, (4, 2)), linewidth=2.6)


def backward_paths() -> Figure:
    r"""Where the gradient flows back one step: the LSTM's carousel above, the RNN's path below.

    Top: along the cell, :math:`\delta c_{t-1} = \bar\delta c_t \odot f_t` (4.10): one
    elementwise product by the forget gate, no weight matrix, no activation slope (the
    carousel term of (4.14)). Bottom: in a plain RNN,
    :math:`\delta h_{t-1} = W_{hh}^\top (\delta h_t \odot (1 - h_t^2))`: a slope and a matrix
    at every step (chapter 3).
    """
    (x0, x1), (y0, y1) = _LSTM_LIMITS
    rnn_height = 4.6
    width = x1 - x0
    height = (y1 - y0 + 1.6) + rnn_height + 0.8
    width_in = min(MAX_WIDTH_IN, width * _UNITS_TO_INCHES)
    fig, (ax_lstm, ax_rnn) = plt.subplots(
        2, 1, figsize=(width_in, height * width_in / width), layout="constrained",
        height_ratios=[y1 - y0 + 1.6, rnn_height])
    for ax in (ax_lstm, ax_rnn):
        ax.set_axis_off()
        ax.set_aspect("equal")
    delta = symbol("delta")
    d = _Drawing(ax_lstm, {"belt_in", "mul_f", "belt_mid", "add", "belt_out", "wire_f",
                           "grad_c"})
    _draw_lstm(d)
    y = _BELT_Y + 0.75
    _gradient_arrow(d, "grad_c", (10.4, y), (0.5, y))
    d.text("grad_c", (10.4, y + 0.2), rf"${delta} {symbol('c_t')}$", ha="right", va="bottom",
           color=COLORS["gradient"])
    d.text("grad_c", (_LSTM_X["f"], y + 0.2), rf"$\times\, {symbol('f')}$", va="bottom",
           color=COLORS["gradient"])
    d.text("grad_c", (0.5, y + 0.2), rf"${delta} {symbol('c_prev')}$", ha="left", va="bottom",
           color=COLORS["gradient"])
    ax_lstm.set_xlim(x0, x1)
    ax_lstm.set_ylim(y0, y1 + 1.6)
    _title(ax_lstm, "LSTM: along the cell, only the forget gate", fontsize=_TITLE_FONT,
                      loc="left")

    r = _Drawing(ax_rnn, {"h_in", "bar", "wire_a", "act", "h_out", "grad_h"})
    _draw_rnn(r)
    y = 2.55
    _gradient_arrow(r, "grad_h", (10.4, y), (0.5, y))
    r.text("grad_h", (10.4, y + 0.2), rf"${delta} {symbol('h_t')}$", ha="right", va="bottom",
           color=COLORS["gradient"])
    r.text("grad_h", (_RNN_TANH_X, y + 0.2), r"$\times\, \tanh'$", va="bottom",
           color=COLORS["gradient"])
    r.text("grad_h", (3.5, y + 0.2), rf"$\times\, {symbol('W_hh')}^\top$", va="bottom",
           color=COLORS["gradient"])
    r.text("grad_h", (0.5, y + 0.2), rf"${delta} {symbol('h_prev')}$", ha="left", va="bottom",
           color=COLORS["gradient"])
    ax_rnn.set_xlim(x0, x1)
    ax_rnn.set_ylim(-0.9, rnn_height - 0.9)
    _title(ax_rnn, "RNN: a slope and a matrix at every step", fontsize=_TITLE_FONT,
                     loc="left")
    fig.drawings = (d, r)
    return fig


# ---------------------------------------------------------------------------------------------
# GRU
# ---------------------------------------------------------------------------------------------

_GRU_LIMITS = ((-1.1, 11.7), (-0.7, 8.0))


def _draw_gru(d: _Drawing, reset: str) -> None:
    ink = COLORS["ink"]
    state_y, bar_y, gate_y = 7.0, 1.7, 3.4
    x_r, x_z, x_nx, x_nh, x_add = 2.3, 3.8, 5.3, 6.8, 8.6
    top = gate_y + _BOX_H / 2
    # the state line: h_{t-1} -> x z_t -> + (1 - z_t) n_t -> h_t
    d.text("state_in", (0.4, state_y), label("h_prev"), ha="right", color=COLORS["hidden"])
    d.wire("state_in", [(0.5, state_y), (x_z - _R, state_y)], COLORS["hidden"], linewidth=4)
    d.op("mul_z", (x_z, state_y), _odot())
    d.wire("state_mid", [(x_z + _R, state_y), (x_add - _R, state_y)], COLORS["hidden"],
           linewidth=4)
    d.op("add", (x_add, state_y), "$+$")
    d.wire("state_out", [(x_add + _R, state_y), (10.4, state_y)], COLORS["hidden"], linewidth=4)
    d.text("state_out", (10.5, state_y), label("h_t"), ha="left", color=COLORS["hidden"])
    # h_{t-1} and x_t into the stacked products (blocks r, z, n)
    left = x_r - 0.75
    right = x_nh + 0.75 if reset == "after" else x_nx + 0.75
    d.wire("h_in", [(0.9, state_y), (0.9, bar_y + 0.2), (left, bar_y + 0.2)], COLORS["hidden"])
    d.wire("x_in", [(0.3, -0.3), (0.3, bar_y - 0.2), (left, bar_y - 0.2)], COLORS["input"])
    d.text("x_in", (0.3, -0.4), label("x_t"), va="top", color=COLORS["input"])
    d.bar("bar_r", x_r - 0.75, x_r + 0.75, bar_y, "r")
    d.bar("bar_z", x_z - 0.75, x_z + 0.75, bar_y, "z")
    d.bar("bar_nx", x_nx - 0.75, x_nx + 0.75, bar_y, label("W_in"))
    if reset == "after":
        d.bar("bar_nh", x_nh - 0.75, x_nh + 0.75, bar_y, label("W_hn"))
    d.text("bar", ((left + right) / 2, bar_y - 0.75),
           rf"${symbol('W_ih')}{symbol('x_t')} + {symbol('b_ih')}$, "
           rf"${symbol('W_hh')}{symbol('h_prev')} + {symbol('b_hh')}$", va="top",
           size=_BOX_FONT)
    for block, x_block in (("r", x_r), ("z", x_z)):
        d.wire(f"act_{block}", [(x_block, bar_y + 0.4), (x_block, gate_y - _BOX_H / 2)], ink,
               linewidth=1.5)
        d.box(f"act_{block}", (x_block, gate_y), label("sigmoid"), COLORS["sigmoid"])
    # update gate: z_t scales the old state, 1 - z_t the candidate (PyTorch's convention)
    branch_y, x_one_minus = 5.9, 5.0
    d.wire("wire_z", [(x_z, top), (x_z, state_y - _R)], ink)
    d.text("wire_z", (x_z - 0.12, 4.9), label("z"), ha="right")
    d.wire("wire_z", [(x_z, branch_y), (x_one_minus - 0.55, branch_y)], ink)
    d.box("one_minus", (x_one_minus, branch_y), "$1-$", COLORS["paper"], width=1.1,
          height=0.6)
    d.wire("wire_1mz", [(x_one_minus + 0.55, branch_y), (x_add - _R, branch_y)], ink)
    d.text("wire_1mz", (6.6, branch_y + 0.12), f"$1-{symbol('z')}$", va="bottom")
    d.op("mul_n", (x_add, branch_y), _odot())
    d.wire("wire_n_state", [(x_add, branch_y + _R), (x_add, state_y - _R)], ink)
    # candidate: reset gate after (PyTorch) or before (Cho et al.) the recurrent product
    add_n_y, tanh_y = 3.4, 5.05
    if reset == "after":
        r_y, mul_r = 4.3, (x_nh, add_n_y)
        d.wire("wire_nh", [(x_nh, bar_y + 0.4), (x_nh, add_n_y - _R)], ink, linewidth=1.5)
        d.wire("wire_r", [(x_r, top), (x_r, r_y), (x_nh, r_y), (x_nh, add_n_y + _R)], ink)
        d.wire("wire_rn", [(x_nh - _R, add_n_y), (x_nx + _R, add_n_y)], ink)
    else:
        x_hn = 7.6  # right of the "1 - z_t" label, so that the tap of h_{t-1} misses it
        r_y, mul_r = 4.45, (x_hn, 4.45)
        d.wire("tap_h", [(x_hn, state_y), (x_hn, r_y + _R)], COLORS["hidden"], linewidth=2.2)
        d.wire("wire_r", [(x_r, top), (x_r, r_y), (x_hn - _R, r_y)], ink)
        d.wire("wire_rh", [(x_hn, r_y - _R), (x_hn, add_n_y + 0.3)], ink)
        d.box("W_hn", (x_hn, add_n_y), label("W_hn"), COLORS["paper"], height=0.6)
        d.wire("wire_rn", [(x_hn - _BOX_W / 2, add_n_y), (x_nx + _R, add_n_y)], ink)
    d.text("wire_r", (x_r - 0.12, r_y - 0.2), label("r"), ha="right")
    d.op("mul_r", mul_r, _odot())
    d.wire("wire_nx", [(x_nx, bar_y + 0.4), (x_nx, add_n_y - _R)], ink, linewidth=1.5)
    d.op("add_n", (x_nx, add_n_y), "$+$")
    d.wire("wire_add_n", [(x_nx, add_n_y + _R), (x_nx, tanh_y - _BOX_H / 2)], ink)
    d.box("act_n", (x_nx, tanh_y), label("tanh"), COLORS["tanh"])
    d.wire("wire_n", [(x_nx + _BOX_W / 2, tanh_y), (x_add, tanh_y), (x_add, branch_y - _R)], ink)
    d.text("wire_n", (6.75, tanh_y + 0.05), label("n"), va="bottom")


_GRU_TITLES = {"after": "reset after the product (PyTorch, cuDNN) (5.3)",
               "before": "reset before the product (Cho et al.) (5.9)"}


def gru_cells(resets: Sequence[str] = ("after", "before")) -> Figure:
    """The GRU, one panel per reset placement, stacked: by default PyTorch's (reset after,
    (5.1)-(5.4)) above the reset-before candidate (5.9) of Cho et al. (2014).

    Every panel uses PyTorch's update convention (5.4): ``z_t`` scales the old state
    ``h_{t-1}``, ``1 - z_t`` the candidate ``n_t``.

    Args:
        resets: the panels, each ``"after"`` or ``"before"``.
    """
    resets = tuple(resets)
    if not resets or any(reset not in _GRU_TITLES for reset in resets):
        raise ValueError(
            f"gru_cells: resets must be a non-empty sequence of 'after' and 'before', "
            f"got {resets!r}")
    (x0, x1), (y0, y1) = _GRU_LIMITS
    width, panel = x1 - x0, y1 - y0 + 0.8
    width_in = min(MAX_WIDTH_IN, width * _UNITS_TO_INCHES)
    fig, axes = plt.subplots(len(resets), 1,
                             figsize=(width_in, len(resets) * panel * width_in / width),
                             layout="constrained", squeeze=False)
    drawings = []
    for ax, reset in zip(axes[:, 0], resets, strict=True):
        ax.set_axis_off()
        ax.set_aspect("equal")
        d = _Drawing(ax)
        _draw_gru(d, reset)
        _finish_axes(ax, _GRU_LIMITS)
        _title(ax, _GRU_TITLES[reset], fontsize=_TITLE_FONT, loc="left")
        drawings.append(d)
    fig.drawings = tuple(drawings)
    return fig


def all_figures() -> dict[str, Figure]:
    """Every diagram of the course, by name (for tests and for looking at them all)."""
    figures = {"lstm_cell": lstm_cell(), "peephole_lstm_cell": peephole_lstm_cell(),
               "backward_paths": backward_paths(), "gru_cells": gru_cells(),
               "gru_cell_pytorch": gru_cells(["after"]),
               "lstm_cell_values": lstm_cell_values(
                   {"c_prev": 0.41, "i": 0.97, "f": 0.03, "g": -0.85, "o": 0.62, "c_t": -0.81,
                    "h_t": -0.41}, title="one unit at one step")}
    for step in LSTM_STEPS:
        figures[f"lstm_step_{step}"] = lstm_walkthrough_step(step)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m companion.diagrams OUT_DIR``: save every diagram as a PNG in OUT_DIR."""
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m companion.diagrams",
                                     description="Save every cell diagram as a PNG.")
    parser.add_argument("out_dir", type=Path, help="folder for the PNG files (created)")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, fig in all_figures().items():
        path = args.out_dir / f"{name}.png"
        fig.savefig(path, dpi=150)
        plt.close(fig)
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
