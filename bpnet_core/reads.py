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

Files are recognised by their content, not their name (`reads_format`, in
`bpnet_core.formats`): fragment files come as ``*.frag.gz`` (MACS3's name),
``*.tsv.gz`` or ``*.bed.gz``, and a bigWig may be named anything. Only a
file that does not exist yet (one an earlier workflow rule writes) is judged
by its suffix.

Written here rather than calling ``bam2bw`` (a command-line script with no
importable functions, which parses fragment files line by line in Python):
fragments and tagAlign files are read in vectorised chunks, every input is
pooled into one track set, and reads on contigs the FASTA lacks are
counted and logged, not fatal. `benchmarks/reads_to_bigwig.py` measures both.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .config import ReadsConfig, as_step_config
from .errors import InputError
from .formats import Layout, is_reads, reads_format, sniff  # noqa: F401 (is_reads: re-exported)
from .io import as_list, atomic_output, fasta_chrom_sizes, require_file

log = logging.getLogger("bpnet_core")

# Alignments that are not one primary, usable read: unmapped, secondary,
# QC-failed, duplicate, supplementary (as samtools view -F 3844).
SKIPPED_FLAGS = 0x4 | 0x100 | 0x200 | 0x400 | 0x800
CHUNK = 1_000_000


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
