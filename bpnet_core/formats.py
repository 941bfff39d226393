"""What kind of file a signal path names: a bigWig, or reads (and which kind), from its content.

Files are recognised by their content, not their name (`reads_format`):
fragment files come as ``*.frag.gz`` (MACS3's name), ``*.tsv.gz`` or
``*.bed.gz``, and a bigWig may be named anything. Only a file that does not
exist yet (one an earlier workflow rule writes) is judged by its suffix.

Kept apart from `bpnet_core.reads` (which counts reads into bigWigs) so
that the config planner (`bpnet_core.config.pipeline.prepare_inputs`) and
the file checks can tell reads from bigWigs without importing the counting
code, and `bpnet_core.reads` can import the configs without a cycle.
"""

from __future__ import annotations

import functools
import os
import zlib
from dataclasses import dataclass, replace
from stat import S_ISREG

from .errors import InputError

# For files that do not exist yet (see `reads_format`): their suffix decides.
ALIGNMENT_SUFFIXES = (".bam", ".sam", ".cram")
FRAGMENT_SUFFIXES = (".tsv", ".tsv.gz", ".tsv.bgz", ".frag", ".frag.gz", ".bedpe", ".bedpe.gz",
                     ".bed", ".bed.gz")
TAGALIGN_SUFFIXES = (".tagalign", ".tagalign.gz")

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
