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
