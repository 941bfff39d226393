"""TF-MoDISco motif discovery on contribution scores: the BPNet Modisco steps.

`discover_motifs` runs what ``modisco motifs`` runs, `report_motifs` makes
a report like ``modisco report`` and `export_meme` writes what
``modisco meme -t PFM`` writes, all through modisco-lite's Python API, so
that no step needs the MEME suite's binaries: motifs are matched to a
database with tomtom-lite (memelite), whose p-values are turned into
Benjamini-Hochberg q-values here.

Unlike the command-line tools, these steps accept sequences shorter than
the window, and write a results file, report and MEME file that hold no
pattern when TF-MoDISco finds none (an under-trained model), instead of
failing.
"""

from __future__ import annotations

import html
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from . import pages
from .config import ModiscoMotifsConfig, as_step_config
from .errors import InputError
from .io import ALPHABET, atomic_output, read_meme, require_file, write_tsv

log = logging.getLogger(__name__)

# The defaults of `modisco motifs` (modiscolite/cli.py) for what this step
# does not expose: seqlet core size (-z), trim size (-t), seqlet flank (-f),
# initial and final flanks (-g, -j), the number of Leiden runs (-l) and the
# seqlet FDR, which the CLI fixes.
SLIDING_WINDOW_SIZE = 20
TRIM_TO_WINDOW_SIZE = 30
FLANK_SIZE = 5
INITIAL_FLANK_TO_ADD = 10
FINAL_FLANK_TO_ADD = 0
TARGET_SEQLET_FDR = 0.05
N_LEIDEN_RUNS = 2

# `modisco report`'s trimming: pattern columns whose summed |CWM| is below
# this fraction of the largest are cut from the ends before matching, and
# logos keep LOGO_FLANK columns beyond what is left.
TRIM_THRESHOLD = 0.3
LOGO_FLANK = 4

PATTERN_GROUPS = ("pos_patterns", "neg_patterns")


@dataclass
class _Pattern:
    """One TF-MoDISco pattern as stored in its results file.

    Attributes
    ----------
    name : str
        ``<group>.pattern_<i>``, e.g. ``pos_patterns.pattern_0``, as the
        modisco tools name it.
    n_seqlets : int
    ppm : numpy.ndarray, shape (w, 4)
        Base frequencies of the aligned seqlets, columns A, C, G, T.
    cwm : numpy.ndarray, shape (w, 4)
        Mean contributions of the aligned seqlets (contribution weight matrix).
    """

    name: str
    n_seqlets: int
    ppm: np.ndarray
    cwm: np.ndarray


# --------------------------------------------------------------------------
# Discovery


def discover_motifs(ohe_path: str | os.PathLike, attr_path: str | os.PathLike,
                    output_h5: str | os.PathLike, n_seqlets: int = 100000,
                    window: int = 400, verbose: bool = False) -> int:
    """Run TF-MoDISco on one-hot sequences and their hypothetical contributions.

    Does what ``modisco motifs -s ohe_path -a attr_path -n n_seqlets
    -w window -o output_h5`` does with the command's other defaults, except
    that sequences shorter than `window` are used whole, and that
    contributions from which no seqlet can be called give a results file
    without patterns (and a warning) instead of an error.

    Parameters
    ----------
    ohe_path : str or PathLike
        npz file whose ``arr_0`` holds the one-hot sequences, shape (N, 4, L).
    attr_path : str or PathLike
        npz file whose ``arr_0`` holds the hypothetical contributions, shape
        (N, 4, L); the contributions TF-MoDISco clusters are these times
        the one-hot sequences.
    output_h5 : str or PathLike
        The results file (modisco-lite's HDF5 layout), written atomically.
    n_seqlets : int
        At most this many seqlets per sign (``-n``).
    window : int
        Only the central `window` bp of each sequence are searched (``-w``).
    verbose : bool
        Let TF-MoDISco print its progress.

    Returns
    -------
    int
        The number of patterns found, positive and negative.
    """
    from modiscolite import io as modisco_io
    from modiscolite import tfmodisco
    from modiscolite.util import calculate_window_offsets

    one_hot = _load_scores(ohe_path, "ohe_filename")
    hypothetical = _load_scores(attr_path, "attr_filename")
    if one_hot.shape != hypothetical.shape:
        raise InputError(
            f"{ohe_path} (config key 'ohe_filename') has shape {one_hot.shape} but "
            f"{attr_path} (config key 'attr_filename') has shape {hypothetical.shape}; "
            "the one-hot sequences and their contributions must have the same shape"
        )
    length = one_hot.shape[2]
    # As the CLI crops; a window longer than the sequences is the whole
    # sequence here, where the CLI fails.
    window_size = min(window, length)
    start, end = calculate_window_offsets(length // 2, window_size)
    if end - start < SLIDING_WINDOW_SIZE + 2 * FLANK_SIZE:
        raise InputError(
            f"the central window of {end - start} bp (config key 'window' = {window}, sequences "
            f"of {length} bp in {ohe_path}) is shorter than one TF-MoDISco seqlet, "
            f"{SLIDING_WINDOW_SIZE + 2 * FLANK_SIZE} bp"
        )
    # The CLI's arrays: (N, window, 4) float32, cropped before the copy.
    one_hot = one_hot[:, :, start:end].transpose(0, 2, 1).astype("float32")
    hypothetical = hypothetical[:, :, start:end].transpose(0, 2, 1).astype("float32")

    log.info("TF-MoDISco on %d sequences, central %d bp, at most %d seqlets per sign",
             len(one_hot), end - start, n_seqlets)
    try:
        pos_patterns, neg_patterns = tfmodisco.TFMoDISco(
            one_hot=one_hot,
            hypothetical_contribs=hypothetical,
            max_seqlets_per_metacluster=n_seqlets,
            sliding_window_size=SLIDING_WINDOW_SIZE,
            flank_size=FLANK_SIZE,
            trim_to_window_size=TRIM_TO_WINDOW_SIZE,
            initial_flank_to_add=INITIAL_FLANK_TO_ADD,
            final_flank_to_add=FINAL_FLANK_TO_ADD,
            target_seqlet_fdr=TARGET_SEQLET_FDR,
            n_leiden_runs=N_LEIDEN_RUNS,
            verbose=verbose,
        )
    except (ValueError, IndexError) as err:
        # Seqlet calling fits a null distribution to the contributions and
        # fails on degenerate ones (all zero, constant, one-signed), which
        # is what an under-trained model gives: that means no seqlets.
        # Failures anywhere else are bugs and propagate.
        if not _raised_in_seqlet_calling(err):
            raise
        log.warning("TF-MoDISco could not call seqlets from the contributions in %s (%s: %s); "
                    "writing a results file without patterns", attr_path, type(err).__name__, err)
        pos_patterns = neg_patterns = None

    n_pos, n_neg = len(pos_patterns or []), len(neg_patterns or [])
    if n_pos + n_neg == 0:
        log.warning("TF-MoDISco found no patterns in %s: the model may be under-trained, or "
                    "too few sequences were given", attr_path)
    else:
        log.info("TF-MoDISco found %d positive and %d negative patterns", n_pos, n_neg)
    with atomic_output(output_h5) as tmp:
        # save_hdf5 leaves its h5py.File unclosed; CPython closes it when
        # the function returns and drops its last reference, before the move.
        modisco_io.save_hdf5(tmp, pos_patterns, neg_patterns, window_size)
    return n_pos + n_neg


def discover_motifs_stage(config: ModiscoMotifsConfig | Mapping[str, Any],
                          ohe_path: str | os.PathLike, attr_path: str | os.PathLike,
                          output_h5: str | os.PathLike | None = None) -> int:
    """`discover_motifs` with the parameters of a ``modisco_motifs`` config.

    `output_h5` defaults to the config's `output_filename`.
    """
    config = as_step_config(ModiscoMotifsConfig, config)
    return discover_motifs(ohe_path, attr_path, output_h5 or config.output_filename,
                           n_seqlets=config.n_seqlets, window=config.window,
                           verbose=config.verbose)


def _load_scores(path: str | os.PathLike, key: str) -> np.ndarray:
    """``arr_0`` of an npz file (or the array of an npy file, as the modisco
    CLI also reads), checked to be finite and of shape (N, 4, L)."""
    path = require_file(path, key)
    try:
        array = np.load(path)
        if isinstance(array, np.lib.npyio.NpzFile):
            with array:
                array = array["arr_0"]
    except KeyError:
        raise InputError(f"{path} (config key '{key}'): the npz file has no array 'arr_0'") from None
    except (OSError, ValueError) as err:
        raise InputError(f"{path} (config key '{key}'): cannot read as an npz file ({err})") from None
    if array.ndim != 3 or array.shape[1] != 4:
        raise InputError(f"{path} (config key '{key}'): expected an array of shape (N, 4, L), "
                         f"got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputError(f"{path} (config key '{key}'): the array holds NaN or infinite values")
    return array


def _raised_in_seqlet_calling(err: BaseException) -> bool:
    """Whether `err` was raised inside modiscolite's seqlet calling."""
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__") == "modiscolite.extract_seqlets":
            return True
        tb = tb.tb_next
    return False


# --------------------------------------------------------------------------
# Reading results


def _read_patterns(modisco_h5: str | os.PathLike) -> list[_Pattern]:
    """The patterns of a TF-MoDISco results file, positive then negative.

    Within a sign, patterns are in the order of their number (pattern_2
    before pattern_10), as the modisco report lists them.
    """
    path = require_file(modisco_h5, "output_filename")
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise InputError(f"{path} (config key 'output_filename'): not an HDF5 file ({err})") from None
    patterns = []
    with handle:
        try:
            for group in PATTERN_GROUPS:
                if group not in handle:
                    continue
                names = [name for name in handle[group] if name.startswith("pattern_")]
                for name in sorted(names, key=lambda name: int(name.split("_")[1])):
                    pattern = handle[group][name]
                    patterns.append(_Pattern(
                        name=f"{group}.{name}",
                        n_seqlets=int(pattern["seqlets"]["n_seqlets"][0]),
                        ppm=np.asarray(pattern["sequence"][:], dtype=np.float64),
                        cwm=np.asarray(pattern["contrib_scores"][:], dtype=np.float64),
                    ))
        except (KeyError, ValueError) as err:
            raise InputError(f"{path} (config key 'output_filename'): not a TF-MoDISco results "
                             f"file ({err})") from None
    return patterns


def _core(cwm: np.ndarray) -> tuple[int, int]:
    """[start, end) of the columns kept by the report's trimming of a CWM (w, 4)."""
    score = np.abs(cwm).sum(axis=1)
    kept = np.flatnonzero(score >= score.max() * TRIM_THRESHOLD)
    return int(kept[0]), int(kept[-1]) + 1


# --------------------------------------------------------------------------
# Matching and report


def _match_patterns(patterns: list[_Pattern], database: Mapping[str, np.ndarray]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """tomtom-lite p-values and Benjamini-Hochberg q-values of patterns vs motifs.

    Each pattern's frequency matrix, trimmed as ``modisco report`` trims it,
    is compared with every database motif on both strands.

    Parameters
    ----------
    patterns : list of _Pattern, length P (at least one)
    database : dict
        Motif name -> letter-probability matrix, shape (w, 4); M motifs.

    Returns
    -------
    pvalues, qvalues : numpy.ndarray, shape (P, M)
        q-values are over the M motifs of each pattern.
    """
    from scipy.stats import false_discovery_control

    queries = []
    for pattern in patterns:
        start, end = _core(pattern.cwm)
        queries.append(pattern.ppm[start:end].T)
    pvalues = tomtom_pvalues(queries, database)
    return pvalues, false_discovery_control(pvalues, axis=1, method="bh")


def tomtom_pvalues(queries: list[np.ndarray], database: Mapping[str, np.ndarray]) -> np.ndarray:
    """tomtom-lite p-values, shape (Q, M), of queries (4, w) against the motifs (w, 4) of `database`."""
    from memelite.tomtom import tomtom

    # float64 both: each dtype and layout is a separate ~30 s numba compile.
    queries = [np.asarray(query, dtype=np.float64) for query in queries]
    targets = [np.asarray(matrix, dtype=np.float64).T for matrix in database.values()]
    # tomtom-lite warns when the database is too small for reliable
    # p-values; the warning belongs in the step's log.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pvalues = tomtom(queries, targets)[0]
    for warning in caught:
        log.warning("tomtom-lite: %s", warning.message)
    return pvalues


def report_motifs(modisco_h5: str | os.PathLike, output_folder: str | os.PathLike,
                  motifs: str | os.PathLike | None = None, top_n_matches: int = 3) -> pd.DataFrame:
    """An HTML report of TF-MoDISco patterns, matched to a motif database.

    Like ``modisco report -l`` (tomtom-lite), with q-values: writes, in
    `output_folder`,

    - ``motifs.tsv``: one row per pattern with ``pattern``, ``n_seqlets``
      and, for i in 0..top_n_matches-1, ``match{i}``, ``pvalue{i}``,
      ``qvalue{i}``: the i-th closest database motif by p-value, its
      tomtom-lite p-value and its Benjamini-Hochberg q-value over all
      database motifs (empty without a database);
    - ``report.html``: the same table with the forward and reverse CWM logos
      of each pattern and the logo of each match, PNGs in ``logos/``.

    A results file without patterns gives a report that says so and a
    ``motifs.tsv`` with only its header.

    Parameters
    ----------
    modisco_h5 : str or PathLike
        The results of `discover_motifs`.
    output_folder : str or PathLike
        Created when missing.
    motifs : str or PathLike, optional
        A MEME motif database (config key ``motifs``).
    top_n_matches : int
        Matches kept per pattern.

    Returns
    -------
    pandas.DataFrame
        The table of ``motifs.tsv``.
    """
    database = read_meme(motifs, key="motifs") if motifs is not None else None
    patterns = _read_patterns(modisco_h5)
    folder = Path(output_folder)
    (folder / "logos").mkdir(parents=True, exist_ok=True)

    columns = ["pattern", "n_seqlets"] + [f"{field}{i}" for i in range(top_n_matches)
                                          for field in ("match", "pvalue", "qvalue")]
    rows = [{"pattern": pattern.name, "n_seqlets": pattern.n_seqlets} for pattern in patterns]
    if database is not None and patterns:
        names = list(database)
        pvalues, qvalues = _match_patterns(patterns, database)
        for row, p, q in zip(rows, pvalues, qvalues):
            for i, k in enumerate(np.argsort(p, kind="stable")[:top_n_matches]):
                row.update({f"match{i}": names[k], f"pvalue{i}": p[k], f"qvalue{i}": q[k]})
    table = pd.DataFrame(rows, columns=columns)
    # Without matches these columns are all missing; keep them numeric.
    table = table.astype({column: float for column in columns[2:] if not column.startswith("match")})
    write_tsv(folder / "motifs.tsv", table)

    logos = _write_logos(folder, patterns, table, database, top_n_matches)
    page = _report_html(table, logos, Path(modisco_h5), motifs, database, top_n_matches)
    with atomic_output(folder / "report.html") as tmp:
        tmp.write_text(page)
    if not patterns:
        log.warning("%s holds no patterns; wrote an empty report to %s", modisco_h5, folder)
    else:
        log.info("report of %d patterns written to %s", len(patterns), folder)
    return table


def _write_logos(folder: Path, patterns: list[_Pattern], table: pd.DataFrame,
                 database: Mapping[str, np.ndarray] | None, top_n_matches: int) -> dict[str, str]:
    """Write the report's logos; return what each shows -> its path in `folder`.

    Keys are ``<pattern>.fwd``, ``<pattern>.rev`` and the names of matched
    database motifs.
    """
    logos = {}
    for pattern in patterns:
        for strand, cwm in (("fwd", pattern.cwm), ("rev", pattern.cwm[::-1, ::-1])):
            start, end = _core(cwm)
            relative = f"logos/{pattern.name}.cwm.{strand}.png"
            _plot_logo(cwm[max(start - LOGO_FLANK, 0):end + LOGO_FLANK], folder / relative)
            logos[f"{pattern.name}.{strand}"] = relative
    if database is not None:
        names = list(database)
        matched = {name for i in range(top_n_matches) for name in table[f"match{i}"].dropna()}
        for k, name in enumerate(names):
            if name in matched:
                # The index keeps file names unique whatever the motif names hold.
                relative = f"logos/motif{k}.png"
                _plot_logo(_information_scaled(database[name]), folder / relative)
                logos[name] = relative
    return logos


def _information_scaled(ppm: np.ndarray) -> np.ndarray:
    """A letter-probability matrix (w, 4) scaled by each column's information (bits)."""
    # modisco report's pseudocount, which keeps log(0) out.
    pseudocount = 0.001
    information = 2 + (ppm * np.log2((ppm + pseudocount) / (1 + 4 * pseudocount))).sum(axis=1)
    return ppm * information[:, None]


def _plot_logo(matrix: np.ndarray, path: Path) -> None:
    """Write a sequence logo of `matrix` (w, 4; columns A, C, G, T) as a PNG, atomically."""
    figure = pages.new_figure(8, 2.4)
    pages.draw_logo(figure.add_subplot(), matrix).style_spines(visible=False)
    pages.save_png(figure, path, dpi=60)


def _report_html(table: pd.DataFrame, logos: dict[str, str], modisco_h5: Path,
                 motifs: str | os.PathLike | None, database: Mapping[str, np.ndarray] | None,
                 top_n_matches: int) -> str:
    """The report page: one table, images by relative path."""

    def image(key: str) -> str:
        return pages.img(logos[key], f"{key} logo", width=240)

    parts = [f"<p>Results: {html.escape(str(modisco_h5))}</p>"]
    if database is None:
        parts.append("<p>No motif database was given: patterns are not matched to known motifs.</p>")
    else:
        parts.append(
            f"<p>Matched against {len(database)} motifs of {html.escape(str(motifs))} with "
            "tomtom-lite (memelite). p: its p-value; q: Benjamini-Hochberg q-value over all "
            "database motifs for that pattern.</p>")
    if table.empty:
        parts.append("<p><strong>TF-MoDISco found no patterns.</strong> The model may be "
                      "under-trained, or too few sequences were given.</p>")
    else:
        rows = []
        for row in table.to_dict("records"):
            cells = {"Pattern": row["pattern"], "Seqlets": row["n_seqlets"],
                     "CWM (forward)": pages.Html(image(f"{row['pattern']}.fwd")),
                     "CWM (reverse)": pages.Html(image(f"{row['pattern']}.rev"))}
            for i in range(top_n_matches if database is not None else 0):
                name = row[f"match{i}"]
                cells[f"Match {i + 1}"] = "" if pd.isna(name) else pages.Html(
                    f"{html.escape(name)}<br>q = {row[f'qvalue{i}']:.3g}, "
                    f"p = {row[f'pvalue{i}']:.3g}<br>{image(name)}")
            rows.append(cells)
        parts.append(pages.table(rows))
    return pages.page("TF-MoDISco report", "\n".join(parts))


# --------------------------------------------------------------------------
# MEME export


def export_meme(modisco_h5: str | os.PathLike, output_meme: str | os.PathLike) -> int:
    """Write the patterns' frequency matrices as a MEME (minimal format) file.

    The matrices are those of ``modisco meme -t PFM``: each pattern's base
    frequencies, rows normalized to sum to 1, named ``<group>.pattern_<i>``;
    ``nsites`` is the pattern's number of seqlets. Without patterns the
    file holds only the MEME header. Written atomically.

    Returns
    -------
    int
        The number of motifs written.
    """
    patterns = _read_patterns(modisco_h5)
    lines = ["MEME version 5", "", f"ALPHABET= {ALPHABET}", "", "strands: + -", "",
             "Background letter frequencies", "A 0.25 C 0.25 G 0.25 T 0.25", ""]
    for pattern in patterns:
        totals = pattern.ppm.sum(axis=1, keepdims=True)
        # A column with no base (every seqlet had an N there) is uniform.
        pfm = np.divide(pattern.ppm, totals, out=np.full_like(pattern.ppm, 0.25), where=totals > 0)
        lines += [f"MOTIF {pattern.name}",
                  f"letter-probability matrix: alength= 4 w= {len(pfm)} nsites= {pattern.n_seqlets} E= 0"]
        lines += [" ".join(f"{value:.6f}" for value in row) for row in pfm]
        lines.append("")
    with atomic_output(output_meme) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    log.info("%d motifs written to %s", len(patterns), output_meme)
    return len(patterns)
