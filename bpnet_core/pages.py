"""The house style of every HTML page the package writes, and its one logo drawer.

The dataset report (`bpnet_core.report`), the batch summary
(`bpnet_core.summary`), the TF-MoDISco report (`bpnet_core.modisco`), the
marginalization report (`bpnet_core.marginalize`) and the two ChromBPNet
QC pages (`bpnet_core.bias_qc`, `bpnet_core.bias_free_qc`) build only their
body; `page` wraps it in a self-contained document with the one stylesheet,
`STYLE`. Text goes into a page escaped (`cell`, `table`, `page`'s title)
unless it is marked as HTML already (`Html`).

Figures are drawn on a `new_figure` (no pyplot: no global backend switch, no
figure registry) and either embedded (`embed`, a base64 PNG) or saved next
to the page (`save_png`) and linked (`img`). Sequence logos, of motifs and of
contribution scores alike, are drawn by `draw_logo` (logomaker), coloured by
`BASE_COLORS`.
"""

from __future__ import annotations

import base64
import html
import io
import math
import numbers
import os
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from .io import ALPHABET, atomic_output

if TYPE_CHECKING:  # matplotlib and logomaker are imported when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: The letters' colours in every logo (A green, C blue, G yellow, T red).
BASE_COLORS = {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "T": "#D62839"}
#: Resolution of figures, unless a page asks for another.
DPI = 90

#: The one stylesheet. Classes: ``pass`` (green) and ``flag`` (red) for
#: verdicts, ``missing`` for a note on what is not there; the batch summary's
#: statuses ``done``, ``failed``, ``not-done`` and ``stale``; ``num`` for the
#: (right-aligned) numeric cells that `table` marks.
STYLE = """
body { font-family: sans-serif; margin: 2em; }
p, ul, details { max-width: 70em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; }
td.num { text-align: right; }
img { max-width: 100%; }
.missing { color: #888; font-style: italic; }
.pass, .done { color: #1a7f37; }
.flag, .failed { color: #cf222e; }
.not-done, .stale { color: #9a6700; }
.failed, .stale { font-weight: bold; }
"""


class Html(str):
    """Text that is HTML already: `cell` and `table` put it in as it is, unescaped."""


def page(title: str, body: str, heading: str | None = None) -> str:
    """A complete, self-contained HTML document.

    Parameters
    ----------
    title : str
        Plain text (escaped here): the document's title and, unless
        `heading` is given, its ``<h1>``.
    body : str
        HTML: everything below the ``<h1>``.
    heading : str, optional
        Plain text of the ``<h1>``, when it is not `title`.
    """
    heading = html.escape(title if heading is None else heading)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{heading}</h1>
{body}
</body>
</html>
"""


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def cell(value: Any) -> str:
    """One value as HTML: `Html` as it is, a missing value as nothing, a float
    to 4 significant digits, anything else as escaped text."""
    if isinstance(value, Html):
        return value
    if _missing(value):
        return ""
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return f"{value:.4g}"
    return html.escape(str(value))


def table(rows: pd.DataFrame | Iterable[Mapping[str, Any]], columns: list[str] | None = None) -> str:
    """An HTML table of `rows`, one cell per column, each written by `cell`.

    Parameters
    ----------
    rows : pandas.DataFrame or iterable of mappings
        Column -> value per row; a value missing from a mapping is an empty cell.
    columns : list of str, optional
        The header (escaped), in order; by default the frame's columns, or the
        mappings' keys in the order they first appear. Given, it makes a table
        with no rows show its header.

    Numbers are right-aligned (class ``num``), text left-aligned.
    """
    if isinstance(rows, pd.DataFrame):
        columns = list(rows.columns) if columns is None else columns
        rows = rows.to_dict("records")
    rows = list(rows)
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    header = "".join(f"<th>{html.escape(str(column))}</th>" for column in columns)
    body = []
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            number = _is_number(value) and not _missing(value)
            cells.append(f'<td class="num">{cell(value)}</td>' if number else f"<td>{cell(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>\n")
    return f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n{''.join(body)}</tbody>\n</table>"


def lines(texts: Iterable[str]) -> Html:
    """Plain texts (escaped) one per line: joined by ``<br>``."""
    return Html("<br>".join(html.escape(str(text)) for text in texts))


# --------------------------------------------------------------------------
# Figures


def new_figure(width: float, height: float, **kwargs) -> Figure:
    """A matplotlib Figure (`width` x `height` inches) on an Agg canvas.

    The canvas directly rather than pyplot: no global backend switch in the
    caller's process, and no figure kept alive by pyplot's registry.
    `kwargs` go to `matplotlib.figure.Figure` (e.g. ``layout="constrained"``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), **kwargs)
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure, dpi: int = DPI) -> bytes:
    """`figure` as a PNG, cropped to what it draws."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(figure.canvas, FigureCanvasAgg):
        FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def save_png(figure: Figure, path: str | os.PathLike, dpi: int = DPI) -> None:
    """Write `figure` as a PNG (`png_bytes`) to `path`, atomically."""
    data = png_bytes(figure, dpi)
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def img(source: bytes | str, alt: str = "figure", width: int | None = None) -> str:
    """An ``<img>`` tag: PNG bytes embedded as base64, or a relative path (URL-quoted).

    `alt` is plain text (escaped here).
    """
    if isinstance(source, bytes):
        src = "data:image/png;base64," + base64.b64encode(source).decode("ascii")
    else:
        src = html.escape(quote(source), quote=True)
    size = f' width="{int(width)}"' if width is not None else ""
    return f'<img src="{src}" alt="{html.escape(alt, quote=True)}"{size}>'


def embed(figure: Figure, alt: str = "figure", dpi: int = DPI) -> str:
    """An ``<img>`` tag holding `figure` as a base64 PNG: the page needs no other file."""
    return img(png_bytes(figure, dpi), alt)


def draw_logo(ax: Axes, matrix: np.ndarray | pd.DataFrame, pad: float = 0.0):
    """Draw a sequence logo of `matrix` on `ax` (logomaker).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    matrix : array (L, 4) or DataFrame
        Letter heights per position, columns A, C, G, T (`ALPHABET`): a
        frequency, information or contribution matrix. Negative heights are
        drawn below the axis, letters upside down; zeros draw nothing.
    pad : float
        Room above and below the letters, as a fraction of their span.

    Returns
    -------
    logomaker.Logo
        For further styling (e.g. ``.style_spines(visible=False)``).

    The y axis spans the stacked heights (and 0); the letters are coloured by
    `BASE_COLORS`, the baseline is drawn at 0.
    """
    import logomaker

    values = np.nan_to_num(np.asarray(matrix, dtype=np.float64))
    if values.ndim != 2 or values.shape[1] != len(ALPHABET):
        raise ValueError(f"a logo needs an (L, {len(ALPHABET)}) matrix of {ALPHABET}, got shape {values.shape}")
    frame = pd.DataFrame(values, columns=list(ALPHABET))
    with warnings.catch_warnings():
        # An all-zero matrix: logomaker sets equal y limits, reset below.
        warnings.filterwarnings("ignore", message="Attempting to set identical")
        logo = logomaker.Logo(frame, ax=ax, color_scheme=BASE_COLORS)
    low = min(values.clip(max=0).sum(axis=1).min(), 0.0)
    high = max(values.clip(min=0).sum(axis=1).max(), 0.0)
    margin = pad * (high - low)
    ax.set_ylim(low - margin, max(high + margin, 1e-6))
    return logo
