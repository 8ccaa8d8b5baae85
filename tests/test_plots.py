"""One look across the notebooks: a configuration's colour is a function of its name, real is black."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from synscale.analysis import plots  # noqa: E402

NAMES = ["real", "sd/classnames/7.5", "sd/classnames/2", "sd/in_captions/2", "if/in_captions/1.5",
         "muse/in_captions/3"]


def test_a_configuration_keeps_its_colour_and_configurations_differ():
    a, b = plots.palette(NAMES), plots.palette(list(reversed(NAMES)) + ["sd/clip_templates/2"])
    assert all(a[n] == b[n] for n in NAMES) and a["real"] == "#000000"
    assert len(set(a.values())) == len(NAMES)


def test_fit_lines_and_log_ticks_draw_readable_axes():
    fig, ax = plt.subplots()
    fits = pd.DataFrame({"data": ["real"], "k": [0.2], "performance": [-0.5]})
    plots.fit_lines(ax, fits, 200, [50, 800], plots.palette(["real"]))
    ax.set(xscale="log", yscale="log")
    plots.log_ticks(ax)
    fig.canvas.draw()
    (line,) = ax.get_lines()
    assert line.get_color() == "#000000" and abs(line.get_ydata()[0] / line.get_ydata()[-1] - 16 ** 0.2) < 1e-6
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all("10^" not in t and "×" not in t for t in labels)
    plt.close(fig)


def test_configurations_of_one_figure_are_told_apart():
    """Every pair of 04's curves (and 01's nine prompt configurations) differs visibly: ≥ 0.15 apart in RGB."""
    import itertools

    import numpy as np
    from matplotlib.colors import to_rgb

    from synscale.data.prompts import PAPER_NAMES

    for names in (NAMES, [f"sd/{c}" for c in PAPER_NAMES]):
        rgb = {n: np.array(to_rgb(plots.colour(n))) for n in names}
        gaps = {(a, b): float(np.linalg.norm(rgb[a] - rgb[b])) for a, b in itertools.combinations(names, 2)}
        assert min(gaps.values()) >= 0.15, min(gaps.items(), key=lambda kv: kv[1])


def test_table_numbers_read_as_three_significant_digits():
    assert [plots.number(x) for x in (0.6481234, 1.3333, 341000.0, 1234.5, 200.0, 21.25, 0.000123, float("nan"))] \
        == ["0.648", "1.33", "341,000", "1,234", "200", "21.2", "0.000123", "—"]


def test_runs_of_one_role_differ_by_size_and_keep_their_role():
    runs = ["CLIP real-24", "SynthCLIP-24", "CLIP real-48", "SynthCLIP-48", "SynthCLIP-24 random",
            "SynthCLIP-24 C_rand", "Mixed real-24 + synth-24"]
    pal = plots.palette(runs)
    assert len(set(pal.values())) == len(runs)
    assert pal["CLIP real-48"] == "#000000" and pal["SynthCLIP-48"] == plots.colour("SynthCLIP-24")


def test_log_ticks_at_given_sizes_drop_labels_that_would_overlap():
    fig, ax = plt.subplots()
    ax.plot([3, 30], [1, 2])
    ax.set(xscale="log")
    plots.log_ticks(ax, "x", at=[3, 8.8, 10, 20, 30])
    assert list(ax.xaxis.get_major_locator().locs) == [3, 8.8, 20, 30]
    plt.close(fig)


def test_tables_show_units_in_their_headers_and_keep_their_data():
    import pandas as pd

    df = pd.DataFrame({"data": ["real", "sd"], "size": [200, 200], "loss": [1.2, 1.3], "top1": [0.6, 0.5],
                       "note": ["a", "b"]})
    shown = plots.with_units(df.set_index(["data", "size"]))
    assert list(shown.columns) == ["loss (nats)", "top-1 (fraction)", "note"]
    assert list(df.columns) == ["data", "size", "loss", "top1", "note"]  # the data keep their names
    wide = plots.with_units(df.pivot_table(index="data", values=["loss", "top1"]))
    assert set(wide.columns) == {"loss (nats)", "top-1 (fraction)"}


def test_generators_get_their_own_colours_where_the_prompts_are_the_same():
    """09's curves are all IN-Captions: the generator, not the prompt, picks the colour, and real keeps its own."""
    pal = plots.generator_palette(["real", "sd/in_captions/2", "if/in_captions/1", "muse/in_captions/1.5",
                                   "fm/in_captions/3"])
    assert len(set(pal.values())) == 5 and pal["real"] == plots.colour("real")
    assert plots.generator_palette(["fm/in_captions/5"])["fm/in_captions/5"] == pal["fm/in_captions/3"]
