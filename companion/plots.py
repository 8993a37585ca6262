"""One plot style for the whole course: readable in print, on a phone, and by colour-blind
readers.

Colours are the Okabe & Ito (2008) palette, designed to stay distinguishable under the common
colour-vision deficiencies; every series also gets its own line style and marker, so a plot
still reads in greyscale.
"""

from itertools import cycle

import matplotlib as mpl
import matplotlib.pyplot as plt

OKABE_ITO = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "sky": "#56B4E9",
    "purple": "#CC79A7",
    "yellow": "#F0E442",
    "black": "#000000",
}
COLORS = [OKABE_ITO[name] for name in ("blue", "vermillion", "green", "orange", "purple", "sky")]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 1))]
MARKERS = ["o", "s", "^", "D", "v", "P"]


def use_course_style() -> None:
    """Apply the course's matplotlib defaults (palette, sizes, a white background)."""
    mpl.rcParams.update(
        {
            "figure.figsize": (7.0, 3.6),
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "axes.prop_cycle": mpl.cycler(color=COLORS, linestyle=LINESTYLES),
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 10.5,
            "legend.frameon": False,
            "lines.linewidth": 2.0,
            "lines.markersize": 5,
            "figure.constrained_layout.use": True,
        }
    )


def series_styles():
    """An endless cycle of ``dict(color=..., linestyle=..., marker=...)`` for plot calls."""
    return cycle(
        dict(color=c, linestyle=ls, marker=m)
        for c, ls, m in zip(COLORS, LINESTYLES, MARKERS, strict=True)
    )


def new_figure(ncols: int = 1, **kwargs):
    """``plt.subplots(1, ncols)`` with the course style applied."""
    use_course_style()
    return plt.subplots(1, ncols, **kwargs)
