"""Raw reads to base-resolution count bigWigs: what ENCODE hands out, as models read it.

A read counts once, at its 5' end: the first aligned base of a plus-strand
read, the last of a minus-strand read. ``shift = (plus, minus)`` moves those
ends by so many bp (the ATAC-seq Tn5 correction is (+4, -4) on raw reads,
as in the official ChromBPNet preprocessing). A fragment file (10x /
ENCODE ``chrom start end ...``, already Tn5-shifted by +4/-5 by its maker)
gives two ends per fragment, ``start`` on the plus strand and ``end - 1``
on the minus strand, each then moved by `shift` (ChromBPNet's +0/+1 brings
them to the +4/-4 convention).

A fragment file's fifth column (10x's duplicate count) is ignored: each
fragment line counts once, as in the official ChromBPNet preprocessing,
which counts deduplicated fragments. A three-column BEDPE file (MACS3's
``-f BEDPE``: ``chrom start end``, one fragment a line) is read as a
fragment file.

Files are recognised by their content, not their name (`reads_format`):
fragment files come as ``*.frag.gz`` (MACS3's name), ``*.tsv.gz`` or
``*.bed.gz``, and a bigWig may be named anything. Only a file that does not
exist yet (one an earlier workflow rule writes) is judged by its suffix.

Written here rather than calling ``bam2bw`` (a command-line script with no
importable functions, which parses fragment files line by line in Python):
fragments and tagAlign files are read in vectorised chunks, every input is
pooled into one track set, and reads on contigs the FASTA lacks are
counted and logged, not fatal. `benchmarks/reads_to_bigwig.py` measures both.
"""

from __future__ import annotations

import functools
import logging
import os
import zlib
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from stat import S_ISREG
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .config import ReadsConfig, as_step_config
from .errors import InputError
from .io import as_list, atomic_output, fasta_chrom_sizes, require_file

log = logging.getLogger("bpnet_core")

# For files that do not exist yet (see `reads_format`): their suffix decides.
ALIGNMENT_SUFFIXES = (".bam", ".sam", ".cram")
FRAGMENT_SUFFIXES = (".tsv", ".tsv.gz", ".tsv.bgz", ".frag", ".frag.gz", ".bedpe", ".bedpe.gz",
                     ".bed", ".bed.gz")
TAGALIGN_SUFFIXES = (".tagalign", ".tagalign.gz")
# Alignments that are not one primary, usable read: unmapped, secondary,
# QC-failed, duplicate, supplementary (as samtools view -F 3844).
SKIPPED_FLAGS = 0x4 | 0x100 | 0x200 | 0x400 | 0x800
CHUNK = 1_000_000

EXPECTED = "a bigWig, or reads: BAM/SAM/CRAM, fragments, BEDPE or tagAlign"
# 0x888FFC26 as written by a little-endian machine, and by a big-endian one.
BIGWIG_MAGIC = (b"\x26\xfc\x8f\x88", b"\x88\x8f\xfc\x26")
GZIP_MAGIC = b"\x1f\x8b"
SAM_HEADER_TAGS = ("@HD", "@SQ", "@RG", "@PG", "@CO")
SNIFFED_LINES = 20
# Decompressed bytes read to find `SNIFFED_LINES` data lines: a small head
# first (enough for nearly every file), a larger one for long comment headers.
HEAD_BYTES = (1 << 16, 1 << 20)


@dataclass(frozen=True)
class Layout:
    """What the first bytes of a file say it is.

    Attributes
    ----------
    kind : str or None
        ``"bigwig"``, ``"alignments"``, ``"fragments"`` or ``"tagalign"``;
        None when it is none of these.
    gzip : bool
        Whether the file is gzip (or BGZF) compressed.
    sep : str
        Column separator of a text file: a tab, or any whitespace.
    skip : int
        Lines before the first data line (comments, ``track``, ``browser``).
    detail : str
        Why `kind` is None; for BEDPE, ``"BEDPE"``.
    """

    kind: str | None
    gzip: bool = False
    sep: str = "\t"
    skip: int = 0
    detail: str = ""


def _format_by_name(path: str | os.PathLike) -> str | None:
    name = os.fspath(path).lower()
    for kind, suffixes in (("alignments", ALIGNMENT_SUFFIXES), ("fragments", FRAGMENT_SUFFIXES),
                           ("tagalign", TAGALIGN_SUFFIXES)):
        if name.endswith(suffixes):
            return kind
    return None


def _head(path: str, limit: int) -> tuple[bytes, bool, bool]:
    """The first `limit` bytes of `path`, decompressed if gzip; whether gzip; whether there is more."""
    with open(path, "rb") as handle:
        raw = handle.read(limit)
        if not raw.startswith(GZIP_MAGIC):
            return raw, False, len(raw) == limit
        out, more = [], True
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
        size = 0
        while size < limit:
            # BGZF and concatenated gzip files are many gzip members: go on
            # to the next. A truncated member yields what it has, no error.
            try:
                piece = decompressor.decompress(raw, limit - size)
            except zlib.error:
                break
            out.append(piece)
            size += len(piece)
            raw = decompressor.unconsumed_tail
            if decompressor.eof:
                raw = decompressor.unused_data
                decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
            if not raw:
                raw = handle.read(limit)
                if not raw:
                    more = False
                    break
        return b"".join(out), True, more


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _line_kind(fields: list[str]) -> str | None:
    """The kind of reads file one data line belongs to (`reads_format`'s rules); None for none."""
    if len(fields) >= 11 and _is_int(fields[1]) and _is_int(fields[3]):
        return "alignments"  # SAM with no header: QNAME FLAG RNAME POS ...
    if len(fields) < 3 or not (_is_int(fields[1]) and _is_int(fields[2])):
        return None
    if len(fields) >= 6 and fields[5] in ("+", "-"):
        return "tagalign"
    if len(fields) == 4 and _is_number(fields[3]):
        return "bedgraph"  # a signal, not reads: the fourth column of fragments is a barcode
    return "bedpe" if len(fields) == 3 else "fragments"


def _sniff_text(data: bytes, more: bool) -> Layout:
    """The `Layout` of a text file's first bytes (`more`: the file goes on)."""
    if b"\0" in data:
        return Layout(None, detail="binary content, not text")
    lines = data.decode("utf-8", errors="replace").split("\n")
    if more:
        lines = lines[:-1]  # cut off mid-line
    skip, kinds, sep = 0, [], None
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r")
        if not line.strip() or line.startswith(("#", "track", "browser")):
            skip += not kinds  # pandas must skip leading track lines; it skips the others itself
            continue
        if not kinds and line.startswith(SAM_HEADER_TAGS):
            return Layout("alignments")
        if sep is None:
            # Tab-separated as the formats say; space-separated files exist too.
            sep = "\t" if len(line.split("\t")) >= 3 else r"\s+"
        kind = _line_kind(line.split("\t") if sep == "\t" else line.split())
        if kind == "bedgraph":
            return Layout(None, detail=f"line {number} is bedGraph: chrom, start, end, value; "
                                       "convert it to a bigWig with bedGraphToBigWig")
        if kind is None or (kinds and kind != kinds[0][1]):
            why = "columns of no reads format" if kind is None else f"unlike line {kinds[0][0]}"
            return Layout(None, detail=f"line {number}, {why}: {line[:60]!r}")
        kinds.append((number, kind))
        if len(kinds) == SNIFFED_LINES:
            break
    if not kinds:
        return Layout(None, detail="no data line" + (f" in its first {len(data)} bytes" if more else ""))
    kind = kinds[0][1]
    if kind == "alignments":
        return Layout(kind)
    # BEDPE fragments are counted as fragment files are: both ends are cut sites.
    return Layout("fragments" if kind == "bedpe" else kind, sep=sep, skip=skip,
                  detail="BEDPE" if kind == "bedpe" else "")


@functools.lru_cache(maxsize=4096)
def _sniff(path: str, size: int, mtime_ns: int) -> Layout:
    """`path`'s `Layout` (cached: `size` and `mtime_ns` tell a rewritten file)."""
    if size == 0:
        return Layout(None, detail="empty file")
    for limit in HEAD_BYTES:
        data, gzipped, more = _head(path, limit)
        if data[:4] in BIGWIG_MAGIC and not gzipped:
            return Layout("bigwig")
        if data.startswith((b"BAM\x01", b"CRAM")):
            return Layout("alignments", gzip=gzipped)
        if gzipped and not data:
            return Layout(None, gzip=True, detail="gzip data that does not decompress")
        layout = _sniff_text(data, more)
        if layout.kind is not None or not more or not layout.detail.startswith("no data line"):
            return replace(layout, gzip=gzipped)
    return replace(layout, gzip=gzipped)


def sniff(path: str | os.PathLike, key: str = "signals") -> Layout | None:
    """The `Layout` of an existing file; None for a path that is not a regular file.

    Raises
    ------
    InputError
        When the file exists but cannot be read.
    """
    try:
        stat = os.stat(path)
    except OSError:
        return None
    if not S_ISREG(stat.st_mode):
        return None
    try:
        return _sniff(os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    except OSError as err:
        raise InputError(f"{path} (config key '{key}'): cannot read ({err.strerror or err})") from None


def reads_format(path: str | os.PathLike, key: str = "signals") -> str | None:
    """The kind of reads file `path` is, from its content; None for a bigWig.

    Recognised, whatever the file's name (text files plain or gzip/bgzip,
    ``#``, ``track`` and ``browser`` lines skipped, columns tab-separated or
    else whitespace-separated; up to `SNIFFED_LINES` data lines looked at):

    - bigWig: magic number 0x888FFC26 -> None;
    - ``"alignments"``: BAM, CRAM, or SAM (a ``@HD``/``@SQ``/``@RG``/
      ``@PG``/``@CO`` header line, or lines of >= 11 columns with integer
      FLAG and POS);
    - ``"tagalign"``: >= 6 columns, integer start and end, strand (``+`` or
      ``-``) in column 6 (tagAlign, or any BED6 of reads);
    - ``"fragments"``: integer start and end and no strand column: 10x /
      ENCODE ``chrom start end barcode count``, and 3-column BEDPE
      ``chrom start end`` (MACS3's: one fragment a line), which is counted
      as fragments are (both ends are cut sites).

    A path that is not a file (yet) is judged by its suffix, so that config
    checks run before the workflow's input rules write their files behave
    as they did: `ALIGNMENT_SUFFIXES`, `FRAGMENT_SUFFIXES`,
    `TAGALIGN_SUFFIXES`; anything else is taken for a bigWig, whose absence
    is reported by the bigWig checks. Answers are cached per (path, size,
    modification time).

    Parameters
    ----------
    path : path
    key : str
        Config key of `path`, for messages.

    Raises
    ------
    InputError
        For a file that is neither a bigWig nor a reads file, naming it and `key`.
    """
    layout = sniff(path, key)
    if layout is None:
        return _format_by_name(path)
    if layout.kind is None:
        raise InputError(f"{path} (config key '{key}'): unrecognised content ({layout.detail}); "
                         f"expected {EXPECTED}")
    return None if layout.kind == "bigwig" else layout.kind


def is_reads(path: str | os.PathLike, key: str = "signals") -> bool:
    """Whether `path` is a reads file rather than a bigWig (see `reads_format`)."""
    return reads_format(path, key) is not None


class _EndCounter:
    """5' end positions per chromosome and strand, kept as int32 arrays until counted."""

    def __init__(self, chrom_sizes: dict[str, int]):
        self.sizes = chrom_sizes
        self.ends = defaultdict(list)  # (chrom, strand) -> [positions]
        self.off_genome = defaultdict(int)  # contig the FASTA lacks -> ends
        self.off_edge = 0

    def add(self, chrom: str, strand: int, positions: np.ndarray) -> None:
        size = self.sizes.get(chrom)
        if size is None:
            self.off_genome[chrom] += len(positions)
            return
        inside = (positions >= 0) & (positions < size)
        self.off_edge += int((~inside).sum())
        self.ends[chrom, strand].append(positions[inside].astype(np.int32))

    def counts(self, chrom: str, strands: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Positions with at least one end on `strands` of `chrom`, sorted, and their counts."""
        arrays = [a for s in strands for a in self.ends.get((chrom, s), [])]
        if not arrays:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        positions, counts = np.unique(np.concatenate(arrays), return_counts=True)
        return positions.astype(np.int64), counts.astype(np.float64)

    def total(self) -> int:
        return sum(len(a) for arrays in self.ends.values() for a in arrays)


def _add_alignments(counter: _EndCounter, path: Path, shift: tuple[int, int], key: str) -> None:
    import pysam

    try:
        handle = pysam.AlignmentFile(str(path), "r", check_sq=False)
    except (ValueError, OSError) as err:
        raise InputError(f"{path} (config key '{key}'): cannot read as BAM/SAM ({err})") from None
    names = handle.references
    kept = skipped = 0
    buffers = defaultdict(list)
    try:
        for read in handle.fetch(until_eof=True):
            if read.flag & SKIPPED_FLAGS or read.reference_id < 0:
                skipped += 1
                continue
            if read.is_reverse:
                buffers[read.reference_id, 1].append(read.reference_end - 1 + shift[1])
            else:
                buffers[read.reference_id, 0].append(read.reference_start + shift[0])
            kept += 1
            if kept % CHUNK == 0:
                _flush(counter, buffers, names)
    except (ValueError, OSError) as err:
        raise InputError(f"{path} (config key '{key}'): truncated or corrupt alignment file "
                         f"after {kept} reads ({err})") from None
    finally:
        handle.close()
    _flush(counter, buffers, names)
    log.info("%s: %d reads counted, %d skipped (unmapped, secondary, supplementary, "
             "QC-failed or duplicate)", path, kept, skipped)


def _flush(counter: _EndCounter, buffers: dict, names: Sequence[str]) -> None:
    for (ref, strand), positions in buffers.items():
        counter.add(names[ref], strand, np.asarray(positions, dtype=np.int64))
    buffers.clear()


def table_chunks(path: Path, columns: list[int], key: str, what: str) -> Iterable[pd.DataFrame]:
    """`columns` of a fragment or tagAlign file, in chunks of `CHUNK` rows (column 0, the chromosome, as str)."""
    # Compression, separator and header lines from the content: the name may say nothing.
    layout = sniff(path, key) or Layout(None)
    try:
        reader = pd.read_csv(path, sep=layout.sep, header=None, comment="#", usecols=columns,
                             skiprows=layout.skip, chunksize=CHUNK, dtype={columns[0]: str},
                             compression="gzip" if layout.gzip else None)
        for chunk in reader:
            yield chunk
    except (ValueError, pd.errors.ParserError, OSError, EOFError) as err:
        raise InputError(f"{path} (config key '{key}'): cannot read as a {what} file "
                         f"(tab-separated chrom, start, end{', name, score, strand' if what == 'tagAlign' else ''}): "
                         f"{err}") from None


def _add_table(counter: _EndCounter, path: Path, shift: tuple[int, int], key: str, stranded_rows: bool) -> None:
    what = "tagAlign" if stranded_rows else "fragment"
    columns = [0, 1, 2, 5] if stranded_rows else [0, 1, 2]
    n_rows = 0
    for chunk in table_chunks(path, columns, key, what):
        try:
            starts = chunk[1].to_numpy(np.int64)
            ends = chunk[2].to_numpy(np.int64)
        except (ValueError, TypeError):
            raise InputError(f"{path} (config key '{key}'): start and end (columns 2 and 3) must be "
                             "integers") from None
        n_rows += len(chunk)
        for chrom, rows in chunk.groupby(0).indices.items():
            if stranded_rows:
                minus = (chunk[5].to_numpy()[rows] == "-")
                counter.add(chrom, 0, starts[rows[~minus]] + shift[0])
                counter.add(chrom, 1, ends[rows[minus]] - 1 + shift[1])
            else:
                # Both ends of a fragment are insertion sites.
                counter.add(chrom, 0, starts[rows] + shift[0])
                counter.add(chrom, 1, ends[rows] - 1 + shift[1])
    log.info("%s: %d %s rows", path, n_rows, what)


def default_shift(path: str | os.PathLike, stranded: bool, key: str = "signals") -> tuple[int, int]:
    """The (plus, minus) shift of `path`'s ends when the config gives none.

    Stranded (ChIP-seq-like): none. Unstranded (ATAC-seq): the Tn5 shift
    (+4, -4) of reads, or (0, +1) for fragment (and BEDPE) files, whose
    makers already shifted them by +4/-5 (the official ChromBPNet
    convention). The format is `reads_format`'s, from the file's content.
    """
    if stranded:
        return (0, 0)
    return (0, 1) if reads_format(path, key) == "fragments" else (4, -4)


def _describe(path: Path, kind: str) -> str:
    """`kind` as the log names it (BEDPE is read as fragments)."""
    layout = sniff(path)
    return "BEDPE fragments" if layout is not None and layout.detail == "BEDPE" else kind


def count_read_ends(paths: str | Sequence[str], chrom_sizes: dict[str, int],
                    shift: Sequence[int] | None = None, stranded: bool = True,
                    key: str = "signals") -> _EndCounter:
    """Pool the shifted 5' ends of every read (or fragment end) of `paths`.

    Parameters
    ----------
    paths : str or list of str
        BAM/SAM/CRAM, fragment, BEDPE or tagAlign files, whatever their
        names (see `reads_format`).
    chrom_sizes : dict
        Chromosome -> length, bp (the FASTA's); ends elsewhere are dropped and logged.
    shift : (int, int), optional
        bp added to plus-strand and minus-strand ends; None: `default_shift`.
    stranded : bool
        Whether the tracks will be stranded (only for the default shift).
    key : str
        Config key of `paths`, for messages.
    """
    counter = _EndCounter(chrom_sizes)
    for path in as_list(paths):
        path = require_file(path, key)
        kind = reads_format(path, key)
        if kind is None:
            raise InputError(f"{path} (config key '{key}'): a bigWig, not a reads file (BAM/SAM/CRAM, "
                             "fragments, BEDPE or tagAlign)")
        file_shift = tuple(int(x) for x in shift) if shift is not None else default_shift(path, stranded, key)
        log.info("%s: %s, ends shifted by %+d (plus strand) / %+d (minus strand)", path,
                 _describe(path, kind), *file_shift)
        if kind == "alignments":
            _add_alignments(counter, path, file_shift, key)
        else:
            _add_table(counter, path, file_shift, key, stranded_rows=kind == "tagalign")
    if counter.off_genome:
        contigs = sorted(counter.off_genome, key=counter.off_genome.get, reverse=True)
        log.info("%d ends on %d contigs not in the FASTA dropped (%s)", sum(counter.off_genome.values()),
                 len(contigs), ", ".join(contigs[:5]) + (" ..." if len(contigs) > 5 else ""))
    if counter.off_edge:
        log.info("%d ends shifted off their chromosome's edge dropped", counter.off_edge)
    if counter.total() == 0:
        seen = ", ".join(sorted(counter.off_genome)[:5]) or "none"
        raise InputError(f"{', '.join(as_list(paths))} (config key '{key}'): no read on a chromosome of "
                         f"the FASTA (reads on: {seen}; the FASTA has {', '.join(list(chrom_sizes)[:5])})")
    return counter


def _write_counts(path: str | os.PathLike, counter: _EndCounter, strands: Sequence[int]) -> int:
    import pyBigWig

    total = 0
    with atomic_output(path) as tmp:
        out = pyBigWig.open(str(tmp), "w")
        try:
            out.addHeader(list(counter.sizes.items()), maxZooms=10)
            for chrom in counter.sizes:
                positions, counts = counter.counts(chrom, strands)
                if len(positions):
                    out.addEntries(chrom, positions.tolist(), values=counts.tolist(), span=1)
                    total += int(counts.sum())
        finally:
            out.close()
    return total


def reads_to_bigwig(paths: str | Sequence[str], sequences: str | os.PathLike, outputs: Sequence[str | os.PathLike],
                    shift: Sequence[int] | None = None, key: str = "signals") -> list[int]:
    """Write base-resolution 5'-end count bigWigs of reads pooled from `paths`.

    Parameters
    ----------
    paths : str or list of str
        Reads files (see `reads_format`), pooled (e.g. replicates).
    sequences : path
        Genome FASTA: the bigWigs' chromosomes and lengths.
    outputs : list of path
        Two paths: plus-strand and minus-strand tracks (stranded, ChIP-seq
        like); one path: both strands summed (unstranded, ATAC/DNase).
    shift : (int, int), optional
        bp added to plus- and minus-strand 5' ends; None: `default_shift`.
    key : str
        Config key of `paths`, for messages.

    Returns
    -------
    list of int
        Total counts written to each output.
    """
    if len(outputs) not in (1, 2):
        raise ValueError("outputs: one unstranded or two stranded (plus, minus) bigWigs")
    counter = count_read_ends(paths, fasta_chrom_sizes(sequences), shift, len(outputs) == 2, key)
    strands = [(0, 1)] if len(outputs) == 1 else [(0,), (1,)]
    totals = [_write_counts(out, counter, s) for out, s in zip(outputs, strands)]
    for out, total in zip(outputs, totals):
        log.info("%s: %d counts", out, total)
    return totals


def convert_reads(config: ReadsConfig | Mapping[str, Any]) -> list[int]:
    """`reads_to_bigwig` for the ``signals_bigwig`` / ``controls_bigwig`` stage of a pipeline."""
    config = as_step_config(ReadsConfig, config)
    return reads_to_bigwig(config.reads, config.sequences, config.bigwigs, config.read_shift, config.role)
