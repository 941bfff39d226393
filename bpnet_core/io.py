"""Reading and writing the file formats of the field: BED, FASTA, bigWig, npz.

Every writer goes through `atomic_output`, so that a killed job leaves no
valid-looking half file behind.
"""

from __future__ import annotations

import contextlib
import gzip
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from .errors import InputError, warn

# The bases of one-hot sequences and motif matrices, in row (column) order.
ALPHABET = "ACGT"
# Lines of a BED file that hold no interval (UCSC's tools skip them too).
_HEADER_PREFIXES = ("#", "track", "browser")


def as_list(paths: str | Sequence[str] | None) -> list[str]:
    """A path or a list of paths as a list of str (None -> [])."""
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return [os.fspath(path) for path in paths]


def require_file(path: str | os.PathLike, key: str) -> Path:
    """`path` as a Path, or an InputError naming the config `key`."""
    path = Path(path)
    if not path.is_file():
        # Relative paths are relative to the working directory, not to the config file.
        tried = "" if path.is_absolute() else f"; looked for {os.path.abspath(path)}"
        raise InputError(f"{path}: file not found (config key '{key}'{tried})")
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; move it into place on success.

    On any exception the temporary file is removed and `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write arrays to a compressed npz file, atomically."""
    with atomic_output(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file (a page, a JSON document), atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def write_tsv(path: str | os.PathLike, table: pd.DataFrame) -> None:
    """Write a table as TSV with a header, atomically."""
    with atomic_output(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


# --------------------------------------------------------------------------
# BED


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _open_text(path: Path):
    return gzip.open(path, "rt") if _is_gzip(path) else open(path)


def _read_bed_exact(path: Path, key: str) -> pd.DataFrame:
    """`_read_bed_file` line by line: slow, but names the first bad line."""
    chroms, starts, ends, centers = [], [], [], []
    try:
        with _open_text(path) as handle:
            for lineno, line in enumerate(handle, 1):
                if not line.strip() or line.startswith(_HEADER_PREFIXES):
                    continue
                fields = line.rstrip("\n").split("\t")
                if len(fields) < 3:
                    fields = line.split()
                if len(fields) < 3:
                    raise InputError(
                        f"{path} (config key '{key}'): line {lineno} has {len(fields)} "
                        "column(s); a BED file needs at least chrom, start, end"
                    )
                try:
                    start, end = int(fields[1]), int(fields[2])
                except ValueError:
                    raise InputError(
                        f"{path} (config key '{key}'): line {lineno}: start and end must "
                        f"be integers, got '{fields[1]}' and '{fields[2]}'"
                    ) from None
                if start < 0 or end <= start:
                    raise InputError(
                        f"{path} (config key '{key}'): line {lineno}: invalid interval "
                        f"{fields[0]}:{start}-{end}"
                    )
                center = start + (end - start) // 2
                # narrowPeak (exactly 10 columns; BED12's 10th is blockCount):
                # column 10 is the summit offset from start (-1: none).
                if len(fields) == 10:
                    try:
                        summit = int(fields[9])
                    except ValueError:
                        summit = -1
                    if 0 <= summit < end - start:
                        center = start + summit
                chroms.append(fields[0])
                starts.append(start)
                ends.append(end)
                centers.append(center)
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise InputError(f"{path} (config key '{key}'): cannot read as BED ({err})") from None
    if not chroms:
        raise InputError(f"{path} (config key '{key}'): the file holds no intervals")
    return pd.DataFrame(
        {"chrom": chroms, "start": starts, "end": ends, "center": centers}
    ).astype({"start": np.int64, "end": np.int64, "center": np.int64})


def _read_bed_fast(path: Path) -> pd.DataFrame | None:
    """`_read_bed_file` by pandas' C parser; None for anything unusual
    (headers past the top, ragged rows, non-tab separators, bad values)."""
    with _open_text(path) as handle:
        skip = 0
        for line in handle:
            if line.strip() and not line.startswith(_HEADER_PREFIXES):
                break
            skip += 1
        else:
            return None  # no interval: the exact reader says so
    n_columns = len(line.rstrip("\n").split("\t"))
    if n_columns < 3:
        return None
    narrowpeak = n_columns == 10  # see _read_bed_exact
    columns = [0, 1, 2, 9] if narrowpeak else [0, 1, 2]
    try:
        table = pd.read_csv(path, sep="\t", header=None, skiprows=skip, usecols=columns,
                            compression="gzip" if _is_gzip(path) else None,
                            dtype={0: str, 1: np.int64, 2: np.int64, 9: np.int64}, na_filter=False,
                            engine="c")
    except Exception:  # whatever it is, the exact reader names it, with its line
        return None
    start, end = table[1].to_numpy(), table[2].to_numpy()
    if (start < 0).any() or (end <= start).any():
        return None
    center = start + (end - start) // 2
    if narrowpeak:
        summit = table[9].to_numpy()
        center = np.where((summit >= 0) & (summit < end - start), start + summit, center)
    return pd.DataFrame({"chrom": table[0], "start": start, "end": end, "center": center}
                        ).astype({"start": np.int64, "end": np.int64, "center": np.int64})


_BED_CACHE: dict[tuple, pd.DataFrame] = {}


def _read_bed_file(path: Path, key: str) -> pd.DataFrame:
    """chrom, start, end and centre (summit when the file has one) of a BED file.

    Cached by path, inode, size and modification time: a workflow checks
    each file once for every stage that reads it, and a batch names hundreds.
    """
    stat = path.stat()
    cache_key = (str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if cache_key not in _BED_CACHE:
        try:
            table = _read_bed_fast(path)
        except (OSError, EOFError) as err:
            raise InputError(f"{path} (config key '{key}'): cannot read as BED ({err})") from None
        _BED_CACHE[cache_key] = table if table is not None else _read_bed_exact(path, key)
    return _BED_CACHE[cache_key].copy()


def read_loci(paths: str | Sequence[str], key: str = "loci") -> pd.DataFrame:
    """Read one or more BED / narrowPeak files (optionally gzipped).

    Windows are centred on the summit (narrowPeak column 10) when the file
    has one, else on the interval's midpoint. Several files are interleaved
    row by row (first of each, then second of each, ...), so that peaks and
    negatives given as a list are mixed evenly, as in the reference.

    Parameters
    ----------
    paths : str or list of str
        The files.
    key : str
        The config key they came from, for messages.

    Returns
    -------
    pandas.DataFrame
        Columns ``chrom`` (str), ``start``, ``end``, ``center`` (int64, 0-based)
        and ``source`` (index of the file in `paths`).
    """
    frames = []
    for i, path in enumerate(as_list(paths)):
        frame = _read_bed_file(require_file(path, key), key)
        frame["source"] = i
        frame["order"] = np.arange(len(frame)) * len(as_list(paths)) + i
        frames.append(frame)
    if not frames:
        raise InputError(f"config key '{key}' names no files")
    loci = pd.concat(frames).sort_values("order", kind="stable")
    return loci.drop(columns="order").reset_index(drop=True)


def within_chromosomes(table: pd.DataFrame, sizes: dict[str, int], paths: str | Sequence[str],
                       sequences: str | os.PathLike, key: str = "loci") -> None:
    """Raise InputError when an interval of `table` ends beyond its chromosome.

    Such an interval cannot come from this genome (a window that merely runs
    off a chromosome end is another matter: stages drop those windows and
    count them in their log). Intervals on chromosomes `sizes` lacks are
    not checked here.

    Parameters
    ----------
    table : pandas.DataFrame
        From `read_loci`.
    sizes : dict
        Chromosome -> length, bp, of the FASTA `sequences`.
    paths, key : the files `table` came from and their config key, for the message.
    """
    lengths = table["chrom"].map(sizes).to_numpy(dtype=float)
    beyond = table["end"].to_numpy() > np.nan_to_num(lengths, nan=np.inf)
    if beyond.any():
        first = table[beyond].iloc[0]
        raise InputError(
            f"{', '.join(as_list(paths))} (config key '{key}'): {int(beyond.sum())} interval(s) end beyond "
            f"their chromosome, e.g. {first.chrom}:{first.start}-{first.end} on {first.chrom} of "
            f"{sizes[first.chrom]} bp in {sequences}; are the loci from another genome build?"
        )


# --------------------------------------------------------------------------
# MEME


def read_meme(path: str | os.PathLike, key: str = "motifs") -> dict[str, np.ndarray]:
    """Motifs of a MEME (minimal format) file.

    tangermeme's `read_meme` reads well-formed files; this reader exists to
    turn a malformed one into one message with the line that is wrong.

    Returns
    -------
    dict
        Motif name -> letter-probability matrix, shape (w, 4), columns A, C, G, T.
    """
    path = require_file(path, key)
    where = f"{path} (config key '{key}')"
    motifs: dict[str, np.ndarray] = {}
    name, rows, width, header_line = None, [], 0, 0

    def finish():
        if name is None:
            return
        if not width:
            raise InputError(f"{where}: motif '{name}' (line {header_line}) has no "
                             "'letter-probability matrix' line")
        if len(rows) != width:
            raise InputError(f"{where}: motif '{name}' (line {header_line}) has {len(rows)} matrix rows, "
                             f"its header says w= {width}")
        motifs[name] = np.array(rows)

    with open(path) as handle:
        for lineno, line in enumerate(handle, 1):
            fields = line.split()
            if not fields:
                continue
            if fields[0] == "MOTIF":
                finish()
                if len(fields) < 2:
                    raise InputError(f"{where}: line {lineno}: MOTIF without a name")
                name, rows, width, header_line = fields[1], [], 0, lineno
            elif name is not None and fields[0] == "letter-probability":
                settings = dict(zip(fields[2::2], fields[3::2]))
                try:
                    width = int(settings["w="])
                    alength = int(settings.get("alength=", 4))
                except (KeyError, ValueError):
                    raise InputError(f"{where}: line {lineno}: a letter-probability matrix line needs "
                                     "'alength= 4 w= <width>'") from None
                if alength != 4:
                    raise InputError(f"{where}: line {lineno}: alength= {alength}; only DNA (ACGT) motifs are supported")
            elif name is not None and width and len(rows) < width:
                try:
                    row = [float(x) for x in fields]
                except ValueError:
                    raise InputError(f"{where}: line {lineno}: matrix row of motif '{name}' is not numeric: "
                                     f"{line.strip()!r}") from None
                if len(row) != 4 or min(row) < 0 or abs(sum(row) - 1) > 0.02:
                    raise InputError(f"{where}: line {lineno}: matrix row of motif '{name}' must be 4 "
                                     f"probabilities summing to 1, got {line.strip()!r}")
                rows.append(row)
    finish()
    if not motifs:
        raise InputError(f"{where}: no motifs found; expected a MEME file with 'MOTIF' and "
                         "'letter-probability matrix' sections")
    return motifs


def meme_names(path: str | os.PathLike) -> dict[str, str]:
    """The alternate names of a MEME file's motifs: ``MOTIF MA0374.2 RSC3`` -> ``{"MA0374.2": "RSC3"}``.

    `read_meme` keys motifs by their ID (the first word); databases such as
    JASPAR put the TF's name second, which is what a reader looks for.

    Parameters
    ----------
    path : str or os.PathLike
        A MEME (minimal format) file.

    Returns
    -------
    dict
        Motif ID -> alternate name, for the motifs that have one (other
        words after the name are kept, space-separated).
    """
    names = {}
    with open(path) as handle:
        for line in handle:
            fields = line.split()
            if len(fields) > 2 and fields[0] == "MOTIF":
                names[fields[1]] = " ".join(fields[2:])
    return names


def motif_label(motif_id: str, names: dict[str, str]) -> str:
    """``"RSC3 (MA0374.2)"`` when `names` has the ID's alternate name, else the ID."""
    name = names.get(motif_id)
    return f"{name} ({motif_id})" if name and name != motif_id else motif_id


# --------------------------------------------------------------------------
# FASTA and bigWig


def fasta_chrom_sizes(path: str | os.PathLike, key: str = "sequences") -> dict[str, int]:
    """Chromosome name -> length of a FASTA file, from its .fai index.

    The index is built (by pyfaidx) when it is missing.

    Raises
    ------
    InputError
        Naming the file and `key`: missing, gzip-compressed, not FASTA, or
        an index that cannot be written or read.
    """
    path = require_file(path, key)
    _refuse_gzip_fasta(path, key)
    fai = Path(f"{path}.fai")
    if not fai.is_file():
        import pyfaidx

        try:
            pyfaidx.Fasta(str(path)).close()
        except (pyfaidx.FastaIndexingError, ValueError) as err:
            raise InputError(f"{path} (config key '{key}'): not a valid FASTA file ({err})") from None
        except OSError:  # pyfaidx's word for "cannot write the index"
            raise InputError(
                f"{path} (config key '{key}'): the FASTA has no .fai index and its folder is "
                f"not writable; create one with `samtools faidx {path}` or copy the FASTA "
                "to a writable folder"
            ) from None
    return _read_fai(fai, key)


def _refuse_gzip_fasta(path: Path, key: str) -> None:
    """Raise InputError when the FASTA is gzip-compressed (plain gzip or bgzip).

    pyfaidx, which every sequence reader here goes through (tangermeme's
    `extract_loci` included), reads bgzip only with BioPython, which is not
    a dependency; without this check a gzipped FASTA ends in an ImportError
    traceback. The magic bytes, not the name, decide: ``hg38.fa`` may be
    gzipped and ``x.fa.gz`` may not be.
    """
    try:
        compressed = _is_gzip(path)
    except OSError as err:
        raise InputError(f"{path} (config key '{key}'): cannot read the FASTA ({err.strerror})") from None
    if not compressed:
        return
    if path.name.endswith(".gz"):
        plain = path.with_name(path.name[:-3])
        command = f"gunzip -k {path}"
    else:  # gunzip refuses a name without .gz
        plain = path.with_name(f"{path.stem}.uncompressed.fa")
        command = f"gunzip -c {path} > {plain}"
    raise InputError(
        f"{path} (config key '{key}'): the FASTA is gzip-compressed, which is not supported "
        f"(bgzip neither); decompress it with `{command}` and set '{key}' to {plain}"
    )


def _read_fai(fai: Path, key: str) -> dict[str, int]:
    """Chromosome name -> length from a .fai index (name, length, ... per line)."""
    sizes = {}
    try:
        with open(fai) as handle:
            for line in handle:
                fields = line.split("\t")
                sizes[fields[0]] = int(fields[1])
    except (OSError, IndexError, ValueError):
        # A truncated index, e.g. from a killed indexing job: rebuilding fixes it.
        raise InputError(
            f"{fai} (config key '{key}'): the FASTA index cannot be read; delete it so that "
            "it is rebuilt, or rebuild it with `samtools faidx`"
        ) from None
    return sizes


def bigwig_chrom_sizes(path: str | os.PathLike, key: str) -> dict[str, int]:
    """Chromosome name -> length in a bigWig file's header."""
    import pyBigWig

    path = require_file(path, key)
    try:
        handle = pyBigWig.open(str(path))
    except RuntimeError:
        handle = None
    if handle is None or not handle.isBigWig():
        raise InputError(f"{path} (config key '{key}'): not a bigWig file")
    try:
        return dict(handle.chroms())
    finally:
        handle.close()


# The sample `warn_if_not_counts` reads: enough values to see a fold-change
# track, read in windows small enough that a dense base-resolution bigWig
# yields at most ~100k intervals per call, over a bounded stretch of a few
# chromosomes, so that a 3 GB human bigWig is checked in well under a second.
_SAMPLE_VALUES = 5000
_SAMPLE_WINDOW = 100_000
_SAMPLE_WINDOWS_PER_CHROM = 20
_SAMPLE_CHROMS = 3
# float32 storage and averaging tools leave counts a hair off whole numbers.
_COUNT_TOLERANCE = 1e-3

# Real paths already checked in this process: a workflow checks the same
# bigWig in several stages, and one warning per file is enough.
_COUNTS_CHECKED: set[str] = set()


def bigwig_sample_values(path: str | os.PathLike) -> np.ndarray:
    """Non-zero values from the start of the first few chromosomes of a bigWig.

    Returns
    -------
    numpy.ndarray
        Up to about ``_SAMPLE_VALUES`` values (one per interval, whatever
        its span), float64; empty when the sampled stretch holds no data.
    """
    import pyBigWig

    values: list[float] = []
    handle = pyBigWig.open(os.fspath(path))
    try:
        for chrom, size in list(handle.chroms().items())[:_SAMPLE_CHROMS]:
            for start in range(0, min(size, _SAMPLE_WINDOW * _SAMPLE_WINDOWS_PER_CHROM), _SAMPLE_WINDOW):
                intervals = handle.intervals(chrom, start, min(start + _SAMPLE_WINDOW, size)) or ()
                values.extend(value for _, _, value in intervals if value != 0)
                if len(values) >= _SAMPLE_VALUES:
                    return np.asarray(values, dtype=np.float64)
    finally:
        handle.close()
    return np.asarray(values, dtype=np.float64)


def warn_if_not_counts(path: str | os.PathLike, key: str) -> None:
    """Warn when a bigWig's values do not look like read counts.

    BPNet is trained on counts of read ends; a fold-change, p-value or
    normalised-coverage bigWig (common ENCODE downloads) trains without error
    on the wrong thing. A sample of values (`bigwig_sample_values`) that
    holds a negative or non-whole number is reported, once per file and
    process. A file that cannot be read is left to the other checks.
    """
    real = os.path.realpath(path)
    if real in _COUNTS_CHECKED:
        return
    _COUNTS_CHECKED.add(real)
    try:
        values = bigwig_sample_values(path)
    except RuntimeError:  # pyBigWig's word for an unreadable file
        return
    values = values[np.isfinite(values)]
    bad = values[(values < 0) | (np.abs(values - np.round(values)) > _COUNT_TOLERANCE)]
    if bad.size:
        warn(
            f"{path} (config key '{key}'): {bad.size} of {values.size} sampled values are not "
            f"read counts (e.g. {bad[0]:g}); this looks like a fold-change, p-value or normalised "
            "track, and BPNet would be trained on it as counts: give the bigWig of raw read-end "
            "counts, or the BAM / fragments file"
        )


def write_bigwig(
    path: str | os.PathLike,
    chrom_sizes: dict[str, int],
    chroms: Sequence[str],
    starts: np.ndarray,
    values: np.ndarray,
) -> None:
    """Write base-resolution tracks of windows to a bigWig, atomically.

    Where windows overlap, the value written is the mean of the windows
    covering the base.

    Parameters
    ----------
    path : str or PathLike
    chrom_sizes : dict
        Chromosome name -> length, in the genome's order (the header).
    chroms : sequence of str, length N
    starts : numpy.ndarray, shape (N,)
        0-based start of each window.
    values : numpy.ndarray, shape (N, L)
        The value at each base of each window.
    """
    import pyBigWig

    starts = np.asarray(starts, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    width = values.shape[1]
    chroms = np.asarray(chroms)
    with atomic_output(path) as tmp:
        out = pyBigWig.open(str(tmp), "w")
        try:
            out.addHeader(list(chrom_sizes.items()), maxZooms=10)
            for chrom, size in chrom_sizes.items():
                rows = np.flatnonzero(chroms == chrom)
                if len(rows) == 0:
                    continue
                rows = rows[np.argsort(starts[rows], kind="stable")]
                for span_start, span_rows in _overlapping_groups(starts[rows], width, rows):
                    span_end = starts[span_rows].max() + width
                    total = np.zeros(span_end - span_start)
                    cover = np.zeros(span_end - span_start)
                    for row in span_rows:
                        offset = starts[row] - span_start
                        total[offset:offset + width] += values[row]
                        cover[offset:offset + width] += 1
                    lo, hi = max(span_start, 0), min(span_end, size)
                    if hi <= lo:
                        continue
                    track = total[lo - span_start:hi - span_start] / np.maximum(
                        cover[lo - span_start:hi - span_start], 1
                    )
                    out.addEntries(chrom, int(lo), values=track.tolist(), span=1, step=1)
        finally:
            out.close()


def _overlapping_groups(sorted_starts: np.ndarray, width: int, rows: np.ndarray):
    """Split windows sorted by start into runs of overlapping windows."""
    breaks = np.flatnonzero(sorted_starts[1:] >= np.maximum.accumulate(sorted_starts)[:-1] + width) + 1
    for group in np.split(np.arange(len(rows)), breaks):
        yield int(sorted_starts[group[0]]), rows[group]
