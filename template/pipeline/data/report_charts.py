"""The run report's charts: matplotlib figures drawn headless into SVG documents, which the page inlines.

Each chart is its own SVG document (the page embeds it as a data URI), its text drawn as paths: it
needs no font, script or network where it is viewed. matplotlib is imported on first use only, so
that a job that writes no report, and every launch, starts without it (about 0.4 s). Labels are the
data's own strings: they are drawn literally (no mathtext), shortened, and their unprintable
characters replaced, so that no value can break a chart.
"""

from __future__ import annotations

import io
import itertools
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

RUN_COLOUR = "#1a73e8"
BASELINE_COLOUR = "#9aa0a6"
DRIFT_COLOUR = "#d93025"
_LABEL_CHARS = 22  # longer labels are cut, with an ellipsis (the tables beside the charts hold them whole)
_WIDTH_IN, _HEIGHT_IN = 5.4, 2.3
_CHAR_IN = 0.072  # a tick label's character at the report's font size, a little wider than the average
_AXIS_LABEL_IN = 0.35  # the axis label beside the tick labels, and the ticks
_NUMBER_CHARS = 7  # a number's tick label: "100,000", "1e-05", "0.0012"
_BOTTOM_IN, _TOP_IN = 0.5, 0.32  # tick labels and the axis label below; the legend above
_STYLE: Any = {  # rcParams (matplotlib types their keys as a Literal of every name)
    "font.size": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#bdc1c6",
    "axes.labelcolor": "#3c4043",
    "xtick.color": "#5f6368",
    "ytick.color": "#5f6368",
    "axes.titlesize": 9,
    "legend.frameon": False,
    "legend.fontsize": 8,
    "svg.fonttype": "path",  # glyphs as paths: the chart looks the same without the font
    "svg.hashsalt": "report",  # the same stats give the same bytes
}

Histogram = dict[str, Any]  # {"edges": [n + 1 floats], "counts": [n numbers]} (docs/report.md)


def label(value: object) -> str:
    """A chart label for a value of the data: printable, and short."""
    text = "".join(char if char.isprintable() else "\ufffd" for char in str(value))
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


def shares(counts: Sequence[float]) -> list[float]:
    """Counts as shares of their total (zeros where the total is zero)."""
    total = float(sum(counts))
    return [float(count) / total if total > 0 else 0.0 for count in counts]


def drawable(histogram: Histogram) -> tuple[list[float], list[float]]:
    """A histogram's counts and edges as drawn: one value alone (equal edges) is one bar of width 1 around it."""
    counts = [float(count) for count in histogram["counts"]]
    edges = [float(edge) for edge in histogram["edges"]]
    if edges[-1] > edges[0]:
        return counts, edges
    return [sum(counts)], [edges[0] - 0.5, edges[0] + 0.5]


def densities(histogram: Histogram) -> tuple[list[float], list[float]]:
    """A histogram's share per unit of its values, and its edges: histograms of other edges become comparable."""
    counts, edges = drawable(histogram)
    widths = [max(high - low, 1e-300) for low, high in itertools.pairwise(edges)]
    return [share / width for share, width in zip(shares(counts), widths, strict=True)], edges


def skewed(heights: Sequence[float]) -> bool:
    """Whether a linear axis would hide all but the tallest bars (an image's zeros): then the axis is logarithmic."""
    positive = sorted(height for height in heights if height > 0)
    return len(positive) >= 3 and positive[-1] > 50 * positive[len(positive) // 2]


def histogram_chart(
    histogram: Histogram, *, baseline: Histogram | None = None, drifted: bool = False, xlabel: str = ""
) -> str:
    """A number's histogram; with a baseline's, both as shares per unit on one axis, the baseline shaded."""
    colour = DRIFT_COLOUR if drifted else RUN_COLOUR
    with _chart() as (figure, axes):
        if baseline is None:
            counts, edges = drawable(histogram)
            axes.stairs(counts, edges, fill=True, color=colour)
            log = skewed(counts)
            axes.set_ylabel("count (log scale)" if log else "count")
        else:
            base_heights, base_edges = densities(baseline)
            heights, edges = densities(histogram)
            axes.stairs(base_heights, base_edges, fill=True, color=BASELINE_COLOUR)
            axes.stairs(heights, edges, color=colour, linewidth=1.8)
            log = skewed(heights) or skewed(base_heights)
            axes.set_ylabel("share per unit (log)" if log else "share per unit")
            _legend(axes, colour)
        if log:
            axes.set_yscale("log")
        if xlabel:
            axes.set_xlabel(xlabel)
        return _svg(figure)


def top_values_chart(
    top: Sequence[Sequence[Any]],
    count: int,
    *,
    baseline_top: Sequence[Sequence[Any]] | None = None,
    baseline_count: int = 0,
    drifted: bool = False,
    limit: int = 10,
) -> str:
    """A string's most frequent values as horizontal bars of their share; beside a baseline's, paired bars."""
    run = {str(value): int(times) for value, times in top}
    base = {str(value): int(times) for value, times in baseline_top or ()}
    ranked = sorted(
        run.keys() | base.keys(),
        key=lambda value: (-max(_share(run, value, count), _share(base, value, baseline_count)), value),
    )
    values = ranked[:limit][::-1]  # the most frequent at the top
    run_shares = [_share(run, value, count) for value in values]
    colour = DRIFT_COLOUR if drifted else RUN_COLOUR
    positions = list(range(len(values)))
    labels = [label(value) for value in values]
    left_chars = max((len(text) for text in labels), default=1)
    with _chart(height=max(_HEIGHT_IN, 0.26 * len(values) + 0.7), left_chars=left_chars) as (figure, axes):
        if baseline_top is None:
            axes.barh(positions, run_shares, color=colour, height=0.7)
        else:
            base_shares = [_share(base, value, baseline_count) for value in values]
            axes.barh([p + 0.2 for p in positions], base_shares, 0.4, color=BASELINE_COLOUR)
            axes.barh([p - 0.2 for p in positions], run_shares, 0.4, color=colour)
            _legend(axes, colour)
        axes.set_yticks(positions, labels, parse_math=False)
        axes.set_xlabel("share of records")
        axes.xaxis.set_major_formatter(_percent())
        return _svg(figure)


def class_chart(
    shares_of_run: Sequence[float],
    names: Sequence[str],
    *,
    baseline_shares: Sequence[float] | None = None,
    drifted: bool = False,
) -> str:
    """A classifier's predicted classes as vertical bars of their share of the predictions; beside a
    baseline's, paired bars. `names`: the classes' labels (their indices where the model names none)."""
    colour = DRIFT_COLOUR if drifted else RUN_COLOUR
    positions = list(range(len(shares_of_run)))
    labels = [label(name) for name in names]
    slanted = len(labels) > 6 and max(len(text) for text in labels) > 3
    bottom_in = _BOTTOM_IN + (0.5 * max(len(text) for text in labels) * _CHAR_IN if slanted else 0.0)
    with _chart(height=_HEIGHT_IN + bottom_in - _BOTTOM_IN, bottom_in=bottom_in) as (figure, axes):
        if baseline_shares is None:
            axes.bar(positions, shares_of_run, color=colour, width=0.7)
        else:
            axes.bar([p - 0.2 for p in positions], baseline_shares, 0.4, color=BASELINE_COLOUR)
            axes.bar([p + 0.2 for p in positions], shares_of_run, 0.4, color=colour)
            _legend(axes, colour)
        axes.set_xticks(positions, labels, parse_math=False, rotation=30 if slanted else 0)
        axes.set_ylabel("share of predictions")
        axes.yaxis.set_major_formatter(_percent())
        return _svg(figure)


def reasons_chart(by_reason: dict[str, int]) -> str:
    """Dead letters per reason, the most frequent at the top."""
    reasons = sorted(by_reason, key=lambda reason: (by_reason[reason], reason))
    left_chars = max((len(label(reason)) for reason in reasons), default=1)
    with _chart(height=max(1.6, 0.3 * len(reasons) + 0.9), left_chars=left_chars) as (figure, axes):
        axes.barh(range(len(reasons)), [by_reason[reason] for reason in reasons], color=DRIFT_COLOUR, height=0.6)
        axes.set_yticks(range(len(reasons)), [label(reason) for reason in reasons], parse_math=False)
        axes.set_xlabel("dead letters")
        axes.xaxis.set_major_locator(_whole_numbers())
        return _svg(figure)


def _share(counts: dict[str, int], value: str, total: int) -> float:
    return counts.get(value, 0) / total if total > 0 else 0.0


def _legend(axes: Any, colour: str) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=BASELINE_COLOUR, label="baseline"), Patch(color=colour, label="this run")]
    axes.legend(handles=handles, loc="upper right", ncols=2, bbox_to_anchor=(1.0, 1.16))


def _whole_numbers() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _percent() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0, decimals=0)


def _margins(figure: Any, left_chars: int, bottom_in: float = _BOTTOM_IN) -> None:
    """Fixed margins, sized for the longest tick label: matplotlib's constrained layout measures every
    text of a chart twice and took half of a report's drawing time."""
    width, height = figure.get_size_inches()
    left = _AXIS_LABEL_IN + left_chars * _CHAR_IN
    figure.subplots_adjust(
        left=left / width, right=1 - 0.15 / width, bottom=bottom_in / height, top=1 - _TOP_IN / height
    )


@contextmanager
def _chart(
    height: float = _HEIGHT_IN, left_chars: int = _NUMBER_CHARS, bottom_in: float = _BOTTOM_IN
) -> Iterator[tuple[Any, Any]]:
    """A figure and its axes in the report's size and style, drawn by no GUI (no pyplot: no global state),
    with room for tick labels of `left_chars` characters at the left."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_STYLE), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a value with a glyph the font lacks is drawn as a box, not warned about
        figure = Figure(figsize=(_WIDTH_IN, height), facecolor="white")
        _margins(figure, left_chars, bottom_in)
        axes = figure.add_subplot()
        axes.tick_params(length=3)
        axes.grid(axis="both", color="#eceff1", linewidth=0.6)
        axes.set_axisbelow(True)
        yield figure, axes


def _svg(figure: Any) -> str:
    """The figure as one SVG document (no date in it: the same stats give the same bytes)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()
