"""Checks of a config against the files it names, before any long work.

The schema (`bpnet_core.config`) can be checked anywhere; these checks need
the data, so they run when a stage or a workflow runs.
"""

from __future__ import annotations

from typing import Collection

from .config import StepConfig, problems_error
from .errors import InputError
from .formats import is_reads
from .io import (
    as_list,
    bigwig_chrom_sizes,
    fasta_chrom_sizes,
    read_loci,
    read_meme,
    require_file,
    warn_if_not_counts,
    within_chromosomes,
)

_CHROM_KEYS = ("training_chroms", "validation_chroms", "chroms")


def _names(names, n: int = 5) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (" ..." if len(names) > n else "")


def _check_intervals(path: str, key: str, sizes: dict[str, int] | None, sequences: str | None,
                     chroms: Collection[str] | None = None, chroms_key: str = "chroms") -> None:
    """Raise InputError when a BED file is not one, does not fit the FASTA, or misses `chroms`."""
    table = read_loci(path, key=key)
    if sizes is not None:
        known = table["chrom"].isin(list(sizes))
        if not known.any():
            raise InputError(f"{path} (config key '{key}'): no interval on a chromosome of the FASTA "
                             f"{sequences}: the file has {_names(table['chrom'].unique())}, the FASTA has "
                             f"{_names(sizes)}")
        within_chromosomes(table[known], sizes, path, sequences, key)
    if chroms and not table["chrom"].isin(list(chroms)).any():
        raise InputError(f"{path} (config key '{key}'): no interval on the chromosomes of "
                         f"'{chroms_key}' ({_names(chroms)}): the file has {_names(table['chrom'].unique())}")


def check_files(config: StepConfig, where: str = "", pending: Collection[str] = ()) -> None:
    """Raise one InputError listing every problem of `file_problems`, prefixed by `where`."""
    problems = file_problems(config, pending)
    if problems:
        raise problems_error(problems, where)


def file_problems(config: StepConfig, pending: Collection[str] = ()) -> list[str]:
    """Check that the files of a step config exist and agree with the FASTA.

    Checked: every input file exists; each BED file (loci, negatives, peaks,
    exclusion lists) parses, holds intervals, has some on chromosomes of the
    FASTA and none ending beyond one; the chromosomes named in the config
    are in the FASTA; each bigWig (signals, controls) names its chromosomes
    as the FASTA does (``1`` vs ``chr1``); a MEME file (motifs) parses.
    Reads files (BAM, fragments) are only checked to exist here. Each
    problem names the file and the config key where the user wrote it
    (`StepConfig.key_name`).

    Parameters
    ----------
    config : StepConfig
    pending : collection of str
        Files that an earlier stage of the workflow writes (not checked).

    Returns
    -------
    list of str
        One line per problem; empty when all is well.
    """
    problems = []

    def guard(check):
        try:
            return check()
        except InputError as err:
            problems.append(str(err))

    sizes = None
    if getattr(config, "sequences", None):
        sizes = guard(lambda: fasta_chrom_sizes(config.sequences, config.key_name("sequences")))
    chroms = getattr(config, "chroms", None)
    for key in ("loci", "negatives", "peaks", "exclusion_lists", "reads"):
        # Reads files are named by the pipeline key they were given as.
        label = config.key_name(key)
        if label == "reads":
            label = getattr(config, "role", key)
        for i, path in enumerate(as_list(getattr(config, key, None))):
            # Reads are a list of the pipeline's signals or controls: indexed, as there.
            name = f"{label}[{i}]" if key == "reads" else label
            if path in pending or guard(lambda: require_file(path, name)) is None:
                continue
            if key != "reads":
                # Empty, non-numeric, from another genome build or on none of
                # the stage's chromosomes: said now, not hours into a batch.
                on = chroms if key == "loci" else None
                guard(lambda: _check_intervals(path, label, sizes, config.sequences, on,
                                               config.key_name("chroms")))
    if getattr(config, "motifs", None):
        guard(lambda: read_meme(config.motifs, key=config.key_name("motifs")))
    if getattr(config, "variants", None) and config.variants not in pending:
        # Another genome's names (1 vs chr1) would leave every variant unscored: said now.
        from .variant_files import check_variant_chroms

        guard(lambda: check_variant_chroms(config.variants, config.sequences, config.key_name("variants"),
                                           config.key_name("sequences")) if sizes is not None
              else require_file(config.variants, config.key_name("variants")))

    used = set()
    for key in _CHROM_KEYS:
        chroms = getattr(config, key, None) or []
        used.update(chroms)
        if sizes is not None:
            missing = [c for c in chroms if c not in sizes]
            if missing:
                problems.append(
                    f"config key '{config.key_name(key)}': chromosomes not in the FASTA {config.sequences}: "
                    f"{_names(missing, 20)} (the FASTA has {_names(sizes)})"
                )

    for key in ("signals", "controls"):
        for i, path in enumerate(as_list(getattr(config, key, None))):
            if path in pending:
                continue
            name = f"{config.key_name(key)}[{i}]"
            reads = guard(lambda: is_reads(path, name))  # None: unrecognised, reported
            if reads is None:
                continue
            if reads:
                guard(lambda: require_file(path, name))
                continue
            bw = guard(lambda: bigwig_chrom_sizes(path, name))
            if bw is not None:
                # A fold-change or p-value track passes every other check.
                warn_if_not_counts(path, name)
            if bw is None or sizes is None:
                continue
            wanted = [c for c in (used or sizes) if c in sizes]
            absent = [c for c in wanted if c not in bw]
            if not set(bw) & set(sizes):
                problems.append(
                    f"{path} (config key '{name}'): chromosome names do not match the FASTA: "
                    f"the bigWig has {_names(bw)}, the FASTA has {_names(sizes)}"
                )
            elif absent and used:
                problems.append(
                    f"{path} (config key '{name}'): no chromosome {_names(absent)} in this bigWig"
                )
    return problems
