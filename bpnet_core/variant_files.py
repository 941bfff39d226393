"""Variants files: VCF (plain or gzipped) or TSV ``chrom pos ref alt [id]``, 1-based.

Torch-free, so that the workflow can check a variants file and list its
chromosomes while it plans the jobs; the scores are in `bpnet_core.variants`.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .errors import InputError
from .io import fasta_chrom_sizes, require_file

INPUT_COLUMNS = ["chrom", "pos", "ref", "alt", "id"]


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _open(path: Path):
    return gzip.open(path, "rt") if _is_gzip(path) else open(path)


def _layout(path: Path, key: str) -> tuple[bool, int]:
    """(whether the file is a VCF, number of header lines to skip)."""
    vcf, skip = False, 0
    try:
        with _open(path) as handle:
            for line in handle:
                if line.startswith("##fileformat=VCF") or line.startswith("#CHROM"):
                    vcf = True
                if not line.startswith("#") and line.strip():
                    fields = line.rstrip("\n").split("\t")
                    column = 1
                    if not vcf and len(fields) > column and not fields[column].strip().isdigit():
                        skip += 1  # a TSV's header line: chrom pos ref alt id
                    break
                skip += 1
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise InputError(f"{path} (config key '{key}'): cannot read the variants file ({err})") from None
    return vcf, skip


def read_variants(path: str | os.PathLike, key: str = "variants", chroms: Sequence[str] | None = None
                  ) -> pd.DataFrame:
    """The variants of a VCF (plain or gzipped) or TSV file, one row per alternative allele.

    Parameters
    ----------
    path : str or PathLike
        A VCF (columns CHROM POS ID REF ALT ...; a multi-allelic ALT
        ``A,T`` gives one row per allele), or a tab-separated file ``chrom
        pos ref alt [id]`` with an optional header line. Positions are
        1-based, as in VCF; ``-`` (or an empty field) is an empty allele.
    key : str
        The config key of `path`, for messages.
    chroms : sequence of str, optional
        Keep only variants on these chromosomes.

    Returns
    -------
    pandas.DataFrame
        Columns ``chrom``, ``pos`` (int64, 1-based), ``ref``, ``alt``
        (upper case, '' for an empty allele), ``id`` (the file's, else
        ``chrom:pos:ref:alt``), in file order.

    Raises
    ------
    InputError
        Naming the file and `key`: missing, unreadable, fewer than four
        columns, or a position that is not a positive integer.
    """
    path = require_file(path, key)
    vcf, skip = _layout(path, key)
    columns = [0, 1, 2, 3, 4] if vcf else None
    try:
        table = pd.read_csv(path, sep="\t", header=None, skiprows=skip, usecols=columns, dtype=str,
                            keep_default_na=False, comment=None, compression="infer" if not _is_gzip(path) else "gzip")
    except pd.errors.EmptyDataError:
        table = pd.DataFrame(columns=range(5))
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError(f"{path} (config key '{key}'): not a VCF nor a TSV of chrom, pos, ref, alt "
                         f"[, id] ({str(err).splitlines()[0]})") from None
    if vcf:
        table = table.rename(columns={0: "chrom", 1: "pos", 2: "id", 3: "ref", 4: "alt"})
    else:
        if table.shape[1] < 4:
            raise InputError(f"{path} (config key '{key}'): {table.shape[1]} column(s); a variants TSV "
                             "has chrom, pos, ref, alt and optionally id (tab-separated)")
        table = table.iloc[:, :5].rename(columns={0: "chrom", 1: "pos", 2: "ref", 3: "alt", 4: "id"})
        if "id" not in table:
            table["id"] = ""
    table["chrom"] = table["chrom"].str.strip()
    if chroms is not None:
        table = table[table["chrom"].isin(list(chroms))]
    pos = pd.to_numeric(table["pos"], errors="coerce")
    bad = pos.isna() | (pos < 1) | (pos != pos.round())
    if bad.any():
        row = bad.to_numpy().nonzero()[0][0]
        raise InputError(f"{path} (config key '{key}'): position '{table['pos'].iloc[row]}' of variant "
                         f"{row + 1} ({table['chrom'].iloc[row]}) is not a positive integer (1-based, as in VCF)")
    table["pos"] = pos.astype(np.int64)
    if vcf:
        table["alt"] = table["alt"].str.split(",")
        table = table.explode("alt", ignore_index=True)
    for allele in ("ref", "alt"):
        table[allele] = table[allele].str.strip().str.upper().replace({"-": ""})
    table["id"] = table["id"].str.strip()
    unnamed = table["id"].isin(["", "."])
    table.loc[unnamed, "id"] = (table["chrom"] + ":" + table["pos"].astype(str) + ":" + table["ref"] + ":"
                                + table["alt"])[unnamed]
    return table[INPUT_COLUMNS].reset_index(drop=True)


def variant_chroms(path: str | os.PathLike, key: str = "variants") -> list[str]:
    """The chromosomes of a variants file, in order of first appearance (reads the first column only)."""
    path = require_file(path, key)
    _, skip = _layout(path, key)
    try:
        first = pd.read_csv(path, sep="\t", header=None, skiprows=skip, usecols=[0], dtype=str,
                            keep_default_na=False, compression="gzip" if _is_gzip(path) else None)[0]
    except pd.errors.EmptyDataError:
        return []
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError(f"{path} (config key '{key}'): not a VCF nor a TSV of chrom, pos, ref, alt "
                         f"[, id] ({str(err).splitlines()[0]})") from None
    return list(dict.fromkeys(first.str.strip()))


def check_variant_chroms(path: str | os.PathLike, sequences: str, key: str = "variants",
                         sequences_key: str = "sequences") -> None:
    """Raise InputError when no variant of `path` is on a chromosome of the FASTA (another genome's names)."""
    names = variant_chroms(path, key)
    sizes = fasta_chrom_sizes(sequences, sequences_key)
    if not names:
        raise InputError(f"{path} (config key '{key}'): no variants in the file")
    if not set(names) & set(sizes):
        raise InputError(f"{path} (config key '{key}'): no variant on a chromosome of the FASTA {sequences}: "
                         f"the file has {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}, the FASTA "
                         f"has {', '.join(list(sizes)[:5])}{' ...' if len(sizes) > 5 else ''} "
                         "(1 vs chr1: another genome's chromosome names?)")
