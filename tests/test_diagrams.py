"""The cell diagrams: labels from the notation source, colour-blind-safe colours, highlighted
steps, readable text, and the structure each picture is meant to teach."""

import itertools
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from companion import diagrams, notation  # noqa: E402
from companion.plots import OKABE_ITO  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHONE_CONTENT_PX = 340  # a figure's width in the book on a 390 px phone screen (measured: 342)
MIN_PHONE_TEXT_PX = 10


@pytest.fixture(scope="module")
def figures():
    figs = diagrams.all_figures()
    for fig in figs.values():
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        fig.test_renderer = canvas.get_renderer()
    yield figs
    plt.close("all")


def texts(fig):
    """The labels and titles a diagram draws (not the hidden axes' tick labels)."""
    return [t for t in fig.findobj(Text) if t.get_text() and t.get_gid()]


def artists_named(drawing, name):
    return drawing.elements[name]


def centre_x(drawing, name):
    patch = artists_named(drawing, name)[0]
    if hasattr(patch, "center"):
        return patch.center[0]
    return patch.get_x() + patch.get_width() / 2


def test_every_diagram_is_a_figure(figures):
    assert set(figures) == {"lstm_cell", "peephole_lstm_cell", "backward_paths", "gru_cells",
                            "lstm_step_1", "lstm_step_2", "lstm_step_3", "lstm_step_4",
                            "gru_cell_pytorch", "lstm_cell_values"}
    for name, fig in figures.items():
        assert isinstance(fig, Figure), name
        assert texts(fig), f"{name} has no labels"


def test_every_symbol_is_on_the_notation_page():
    page = (ROOT / "book" / "notation.md").read_text(encoding="utf-8")
    formulas = re.findall(r"\$\$(.+?)\$\$|\$(.+?)\$", page, flags=re.S)
    math = " ".join(a or b for a, b in formulas)
    for name, latex in notation.SYMBOLS.items():
        token = re.compile(r"(?<![A-Za-z_{])" + re.escape(latex) + r"(?![A-Za-z0-9_])")
        assert token.search(math), (
            f"notation.SYMBOLS[{name!r}] = {latex!r} does not appear in a formula of "
            "book/notation.md: rename it on the page too"
        )


def test_a_renamed_symbol_changes_the_pictures(monkeypatch):
    monkeypatch.setitem(notation.SYMBOLS, "h_prev", r"s_{t-1}")
    monkeypatch.setitem(notation.SYMBOLS, "n", r"\tilde{h}_t")
    lstm_labels = [t.get_text() for t in texts(diagrams.lstm_cell())]
    gru_labels = [t.get_text() for t in texts(diagrams.gru_cells())]
    plt.close("all")
    assert "$s_{t-1}$" in lstm_labels and "$s_{t-1}$" in gru_labels
    assert not any("h_{t-1}" in text for text in lstm_labels + gru_labels)
    assert r"$\tilde{h}_t$" in gru_labels


def test_unknown_symbol_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown name 'h_next'"):
        notation.label("h_next")


def _colours(fig):
    for artist in fig.findobj(lambda a: a.get_gid() is not None):
        if isinstance(artist, Text):
            yield artist, artist.get_color()
        elif isinstance(artist, matplotlib.lines.Line2D):
            yield artist, artist.get_color()
        elif isinstance(artist, matplotlib.patches.Patch):
            yield artist, artist.get_facecolor()
            yield artist, artist.get_edgecolor()


def test_colours_come_from_the_colour_blind_safe_palette(figures):
    allowed = {value.lower() for value in OKABE_ITO.values()} | {"#ffffff"}
    for name, fig in figures.items():
        for artist, colour in _colours(fig):
            assert to_hex(colour, keep_alpha=False) in allowed, (name, artist, colour)
    assert set(map(str.lower, diagrams.COLORS.values())) <= allowed


def test_text_is_readable_at_phone_width(figures):
    for name, fig in figures.items():
        width_in = fig.get_size_inches()[0]
        assert width_in <= diagrams.MAX_WIDTH_IN + 1e-9, name
        for text in texts(fig):
            size = text.get_fontsize()
            assert size >= diagrams.MIN_FONT_SIZE, (name, text.get_text(), size)
            on_phone = size / 72 * PHONE_CONTENT_PX / width_in
            assert on_phone >= MIN_PHONE_TEXT_PX, (name, text.get_text(), on_phone)


def test_no_two_labels_overlap(figures):
    for name, fig in figures.items():
        renderer = fig.test_renderer
        boxes = [(t.get_text(), t.get_window_extent(renderer).expanded(0.98, 0.9))
                 for t in texts(fig)]
        for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
            assert not box_a.overlaps(box_b), f"{name}: {a!r} overlaps {b!r}"


def _drawings(fig):
    return getattr(fig, "drawings", None) or (fig.drawing,)


def test_text_in_a_box_or_circle_fits_inside_it(figures):
    for name, fig in figures.items():
        renderer = fig.test_renderer
        for drawing in _drawings(fig):
            assert drawing.enclosed
            for patch, text in drawing.enclosed:
                inner = text.get_window_extent(renderer)
                outer = patch.get_window_extent(renderer)
                assert (inner.x0 >= outer.x0 and inner.x1 <= outer.x1
                        and inner.y0 >= outer.y0 - 1 and inner.y1 <= outer.y1 + 1), (
                    f"{name}: {text.get_text()!r} does not fit in its box")


def test_text_stays_inside_the_figure(figures):
    for name, fig in figures.items():
        renderer = fig.test_renderer
        frame = fig.bbox
        for text in texts(fig):
            box = text.get_window_extent(renderer)
            assert (box.x0 >= frame.x0 - 1 and box.x1 <= frame.x1 + 1
                    and box.y0 >= frame.y0 - 1 and box.y1 <= frame.y1 + 1), (name, text)


def test_each_walkthrough_step_highlights_its_path_and_fades_the_rest():
    steps = diagrams.lstm_step_elements()
    assert steps[1] >= {"act_f", "wire_f", "mul_f"} and "act_i" not in steps[1]
    assert steps[2] >= {"act_i", "act_g", "mul_ig"} and "mul_f" not in steps[2]
    assert steps[3] >= {"belt_in", "mul_f", "add", "belt_out"} and "act_o" not in steps[3]
    assert steps[4] >= {"act_o", "tanh_c", "mul_o", "h_out"} and "act_f" not in steps[4]
    for step, names in steps.items():
        drawing = diagrams.lstm_walkthrough_step(step).drawing
        assert names <= set(drawing.elements), step
        for name, artists in drawing.elements.items():
            expected = 1.0 if name in names else diagrams.FADED_ALPHA
            assert all(a.get_alpha() == expected for a in artists), (step, name)
    plain = diagrams.lstm_cell().drawing
    assert all(a.get_alpha() == 1.0 for artists in plain.elements.values() for a in artists)
    plt.close("all")


def test_walkthrough_rejects_a_step_that_does_not_exist():
    with pytest.raises(ValueError, match="step must be 1, 2, 3 or 4, got 5"):
        diagrams.lstm_walkthrough_step(5)


def test_lstm_blocks_are_in_pytorch_order_with_their_activations(figures):
    drawing = figures["lstm_cell"].drawing
    xs = [centre_x(drawing, f"bar_{block}") for block in ("i", "f", "g", "o")]
    assert xs == sorted(xs)
    for block, activation in (("i", "sigmoid"), ("f", "sigmoid"), ("g", "tanh"),
                              ("o", "sigmoid")):
        words = [a.get_text() for a in artists_named(drawing, f"act_{block}")
                 if isinstance(a, Text)]
        assert words == [notation.label(activation)], block


def test_peepholes_read_the_old_cell_for_i_and_f_and_the_new_cell_for_o(figures):
    drawing = figures["peephole_lstm_cell"].drawing
    x_forget, x_add = centre_x(drawing, "mul_f"), centre_x(drawing, "add")

    def tap_x(block):
        line = artists_named(drawing, f"peep_{block}")[0]
        return line.get_xdata()[0]

    assert tap_x("i") < x_forget and tap_x("f") < x_forget  # c_{t-1}, before the forget product
    assert tap_x("o") > x_add  # c_t, after the update


def test_backward_view_highlights_only_the_carousel_and_the_rnn_path(figures):
    lstm_drawing, rnn_drawing = figures["backward_paths"].drawings
    assert lstm_drawing.highlight >= {"belt_in", "mul_f", "wire_f", "grad_c"}
    assert not lstm_drawing.highlight & {"act_i", "act_g", "act_o", "mul_o", "h_in", "bar_f"}
    assert rnn_drawing.highlight >= {"bar", "act", "grad_h"} and "x_in" not in \
        rnn_drawing.highlight
    labels = [t.get_text() for t in texts(figures["backward_paths"])]
    assert rf"$\times\, {notation.symbol('f')}$" in labels
    assert rf"$\times\, {notation.symbol('W_hh')}^\top$" in labels


def test_gru_update_gate_scales_the_old_state_and_one_minus_it_the_candidate(figures):
    after, before = figures["gru_cells"].drawings
    for drawing in (after, before):
        z_line = artists_named(drawing, "wire_z")[0]
        mul_z = artists_named(drawing, "mul_z")[0]
        assert z_line.get_xdata()[-1] == pytest.approx(mul_z.center[0])  # z_t meets h_{t-1}
        one_minus = artists_named(drawing, "wire_1mz")[0]
        mul_n = artists_named(drawing, "mul_n")[0]
        assert one_minus.get_xdata()[-1] < mul_n.center[0]  # 1 - z_t meets n_t
        n_line = artists_named(drawing, "wire_n")[0]
        assert n_line.get_xdata()[-1] == pytest.approx(mul_n.center[0])
    # reset after: W_hn h_{t-1} comes out of the stacked product; before: its own box after r_t
    assert "bar_nh" in after.elements and "W_hn" not in after.elements
    assert "W_hn" in before.elements and "bar_nh" not in before.elements
    assert "tap_h" in before.elements


def test_gru_panels_are_chosen_by_reset_placement():
    assert len(diagrams.gru_cells(["after"]).drawings) == 1
    with pytest.raises(ValueError, match="resets must be .* got \\('middle',\\)"):
        diagrams.gru_cells(["middle"])
    plt.close("all")


@pytest.mark.slow
def test_command_line_saves_every_diagram(tmp_path, capsys):
    assert diagrams.main([str(tmp_path / "out")]) == 0
    saved = sorted(path.stem for path in (tmp_path / "out").glob("*.png"))
    assert saved == sorted(diagrams.all_figures())
    plt.close("all")
    assert all(path.stat().st_size > 10_000 for path in (tmp_path / "out").glob("*.png"))


def test_values_are_written_under_their_blocks_and_states():
    values = {"c_prev": 0.5, "i": 0.91, "f": 0.07, "g": -0.66, "o": 0.25, "c_t": -0.57,
              "h_t": -0.13}
    drawing = diagrams.lstm_cell_values(values).drawing
    for name, value in values.items():
        written = [a.get_text() for a in drawing.elements[f"value_{name}"] if isinstance(a, Text)]
        assert f"{abs(value):.2f}" in written[-1] and written[-1].startswith(
            "\N{MINUS SIGN}" if value < 0 else "0"), (name, written)
    with pytest.raises(ValueError, match="missing h_t"):
        diagrams.lstm_cell_values({k: v for k, v in values.items() if k != "h_t"})
    plt.close("all")
