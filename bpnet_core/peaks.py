"""Peaks called by MACS3 from the signal reads, for configs that give no `loci`.

ChIP-seq-like (stranded) data go through MACS3's fragment-size model, with
the control reads as its control; ATAC/DNase-like (unstranded) data are
called on cut sites smoothed over 150 bp (``--nomodel --shift -75
--extsize 150 --keep-dup all``, as ENCODE's ATAC-seq pipeline does).
Fragment files are first turned into their two cut sites each, as 1-bp BED
reads, since MACS3's own fragment format piles up whole fragments instead.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .config import PeakCallingConfig, as_step_config
from .errors import InputError
from .formats import reads_format
from .io import atomic_output, fasta_chrom_sizes
from .reads import table_chunks

log = logging.getLogger("bpnet_core")

NARROWPEAK_COLUMNS = ["chrom", "start", "end", "name", "score", "strand", "signal_value",
                      "p_value", "q_value", "summit"]


def effective_genome_size(sequences: str | os.PathLike) -> int:
    """Number of non-N bases of a FASTA file: MACS3's ``-g`` when none is given."""
    import pyfaidx

    fasta_chrom_sizes(sequences)  # clear message for a missing or invalid FASTA
    called = 0
    with pyfaidx.Fasta(str(sequences), as_raw=True, sequence_always_upper=True) as fasta:
        for record in fasta:
            for start in range(0, len(record), 10_000_000):
                chunk = record[start:start + 10_000_000]
                called += len(chunk) - chunk.count("N")
    return called


def _cut_sites_bed(fragments: Path, output: Path, key: str) -> None:
    """Both ends of each fragment as 1-bp plus-strand BED reads (cut sites)."""
    with open(output, "w") as out:
        for chunk in table_chunks(fragments, [0, 1, 2], key, "fragment"):
            starts, ends = chunk[1].to_numpy(np.int64), chunk[2].to_numpy(np.int64)
            sites = np.concatenate([starts, ends - 1])
            pd.DataFrame({"chrom": np.concatenate([chunk[0], chunk[0]]), "start": sites,
                          "end": sites + 1, "name": ".", "score": 0, "strand": "+"}
                         ).to_csv(out, sep="\t", header=False, index=False)


def _macs_inputs(paths: list[str], key: str, tmp: Path) -> tuple[list[str], str]:
    """MACS3 input files and their format (BAM/SAM: AUTO; tagAlign and cut sites: BED)."""
    files, formats = [], set()
    for i, path in enumerate(paths):
        if not Path(path).is_file():
            raise InputError(f"{path}: file not found (config key '{key}')")
        kind = reads_format(path, key)  # from the content: BEDPE comes as "fragments"
        if kind is None:
            raise InputError(f"{path} (config key '{key}'): a bigWig; peak calling takes reads files "
                             "(BAM/SAM/CRAM, fragments, BEDPE or tagAlign)")
        if kind == "fragments":
            bed = tmp / f"{key}.{i}.cut_sites.bed"
            _cut_sites_bed(Path(path), bed, key)
            files.append(str(bed))
            formats.add("BED")
        else:
            files.append(str(path))
            formats.add("AUTO" if kind == "alignments" else "BED")
    if len(formats) > 1:
        raise InputError(f"config key '{key}': peak calling takes alignments (BAM/SAM) or "
                         f"fragment/tagAlign files, not both: {', '.join(paths)}")
    return files, formats.pop()


def _macs3() -> str:
    found = shutil.which("macs3") or str(Path(sys.executable).with_name("macs3"))
    if not Path(found).is_file():
        raise InputError("MACS3 is not installed (pip install macs3); it calls peaks when a config "
                         "gives no 'loci'")
    return found


def clip_to_chromosomes(peaks: pd.DataFrame, sizes: dict[str, int]) -> pd.DataFrame:
    """Peaks cut back to their chromosome, summits kept inside them.

    MACS3 extends reads past chromosome ends (``--extsize``), so peaks near
    telomeres can end beyond them; ENCODE's pipelines run ``bedClip`` for
    this. The peaks' windows that still run off an end are dropped later,
    by every stage alike (`bpnet_core.data.load_windows`).

    Parameters
    ----------
    peaks : pandas.DataFrame
        narrowPeak columns (`NARROWPEAK_COLUMNS`), all on chromosomes of `sizes`.
    sizes : dict
        Chromosome -> length, bp.
    """
    lengths = peaks["chrom"].map(sizes).to_numpy()
    summits = peaks["start"].to_numpy() + peaks["summit"].to_numpy()
    start = np.maximum(peaks["start"].to_numpy(), 0)
    end = np.minimum(peaks["end"].to_numpy(), lengths)
    clipped = (start != peaks["start"].to_numpy()) | (end != peaks["end"].to_numpy())
    if clipped.any():
        log.info("%d peaks running past a chromosome end clipped to it", int(clipped.sum()))
    peaks = peaks.assign(start=start, end=end, summit=np.clip(summits, start, end - 1) - start)
    return peaks[peaks["end"] > peaks["start"]]


def call_peaks(config: PeakCallingConfig | Mapping[str, Any]) -> pd.DataFrame:
    """Call peaks with MACS3 and write them, summits included, as narrowPeak.

    Parameters
    ----------
    config : PeakCallingConfig
        The reads (`signals`, `controls`), `stranded`, `peak_qvalue`,
        `genome_size` and the FASTA whose chromosomes the peaks must be on.

    Returns
    -------
    pandas.DataFrame
        The peaks written to ``config.output_filename`` (narrowPeak columns,
        ``summit`` an offset from ``start``), sorted by position.

    Raises
    ------
    InputError
        When MACS3 fails on the inputs or calls no peak.
    """
    config = as_step_config(PeakCallingConfig, config)
    sizes = fasta_chrom_sizes(config.sequences)
    genome_size = config.genome_size or effective_genome_size(config.sequences)
    out_dir = Path(config.output_filename).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".call_peaks.", dir=out_dir) as folder:
        tmp = Path(folder)
        treatment, fmt = _macs_inputs(config.signals, "signals", tmp)
        command = [_macs3(), "callpeak", "-t", *treatment, "-f", fmt, "-g", str(genome_size),
                   "-q", str(config.peak_qvalue), "-n", "peaks", "--outdir", str(tmp), "--verbose", "1"]
        if config.controls:
            control, control_fmt = _macs_inputs(config.controls, "controls", tmp)
            if control_fmt != fmt:
                raise InputError("config keys 'signals' and 'controls': peak calling needs their reads "
                                 "in one kind of file (alignments, or fragment/tagAlign files)")
            command += ["-c", *control]
        if config.stranded:
            # MACS3's fragment-size model; where too few paired peaks build
            # it (small or shallow data), it extends reads by 200 bp instead.
            command += ["--fix-bimodal", "--extsize", "200"]
        else:
            command += ["--nomodel", "--shift", "-75", "--extsize", "150", "--keep-dup", "all"]
        log.info("%s", " ".join(command))
        run = subprocess.run(command, capture_output=True, text=True)
        for line in (run.stdout + run.stderr).splitlines():
            log.info("macs3: %s", line)
        if run.returncode != 0:
            last = [line for line in run.stderr.splitlines() if line.strip()][-3:]
            raise InputError(f"MACS3 failed to call peaks from {', '.join(config.signals)} (config key "
                             f"'signals'): {' | '.join(last) or f'exit status {run.returncode}'}")
        peaks = pd.read_csv(tmp / "peaks_peaks.narrowPeak", sep="\t", header=None, names=NARROWPEAK_COLUMNS,
                            dtype={"chrom": str})
    on_genome = peaks["chrom"].isin(list(sizes))
    if (~on_genome).any():
        log.info("%d peaks on contigs not in the FASTA dropped", int((~on_genome).sum()))
    peaks = clip_to_chromosomes(peaks[on_genome], sizes)
    order = {chrom: i for i, chrom in enumerate(sizes)}
    peaks = (peaks.assign(order=peaks["chrom"].map(order)).sort_values(["order", "start"])
             .drop(columns="order"))
    if peaks.empty:
        raise InputError(f"MACS3 called no peak at q < {config.peak_qvalue} from {', '.join(config.signals)} "
                         "(config keys 'signals', 'peak_qvalue'): raise peak_qvalue or give 'loci'")
    with atomic_output(config.output_filename) as out:
        peaks.to_csv(out, sep="\t", header=False, index=False)
    log.info("%d peaks (q < %g, genome size %s) written to %s; median width %d bp", len(peaks),
             config.peak_qvalue, genome_size, config.output_filename, int((peaks["end"] - peaks["start"]).median()))
    return peaks.reset_index(drop=True)
