"""Windows of sequence and signal around loci, and the training sampler.

Sequences are one-hot (A, C, G, T) with shape (N, 4, L). Signals and
controls are base-resolution counts with shape (N, S, L), one row per
bigWig in the order of the config. An even number of tracks is read as
consecutive (plus, minus) strand pairs, an odd number as unstranded tracks:
this decides how reverse-complement augmentation treats them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import torch

from .errors import InputError
from .io import as_list, fasta_chrom_sizes, read_loci, within_chromosomes

log = logging.getLogger(__name__)


@dataclass
class Windows:
    """Extracted windows, all centred on `loci.center`.

    Attributes
    ----------
    X : torch.Tensor, shape (N, 4, in_window + 2 * max_jitter), int8
        One-hot sequence.
    y : torch.Tensor or None, shape (N, S, out_window + 2 * max_jitter), float32
        Signal counts per base.
    X_ctl : torch.Tensor or None, shape (N, C, in_window + 2 * max_jitter), float32
        Control counts per base.
    loci : pandas.DataFrame
        The kept loci (columns chrom, start, end, center, source), row i
        describing window i.
    max_jitter : int
        How far the stored windows extend beyond the model's windows on each side.
    """

    X: torch.Tensor
    y: torch.Tensor | None
    X_ctl: torch.Tensor | None
    loci: pd.DataFrame
    max_jitter: int = 0

    def __len__(self) -> int:
        return len(self.X)

    def subset(self, rows: np.ndarray | torch.Tensor) -> "Windows":
        """The windows at `rows` (indices or a boolean mask)."""
        rows = torch.as_tensor(np.flatnonzero(rows) if np.asarray(rows).dtype == bool else rows)
        return Windows(
            X=self.X[rows], y=None if self.y is None else self.y[rows],
            X_ctl=None if self.X_ctl is None else self.X_ctl[rows],
            loci=self.loci.iloc[rows.numpy()].reset_index(drop=True), max_jitter=self.max_jitter,
        )

    def sample(self, n: int, random_state: int | None) -> "Windows":
        """A random `n` of the windows, kept in their order (all of them when there are no more)."""
        if len(self) <= n:
            return self
        return self.subset(np.sort(np.random.default_rng(random_state).choice(len(self), n, replace=False)))

    def concat(self, other: "Windows") -> "Windows":
        """This set's rows, then `other`'s (same window sizes, jitter and tracks)."""
        def both(a, b):
            return None if a is None else torch.cat([a, b])

        return Windows(X=torch.cat([self.X, other.X]), y=both(self.y, other.y),
                       X_ctl=both(self.X_ctl, other.X_ctl),
                       loci=pd.concat([self.loci, other.loci], ignore_index=True), max_jitter=self.max_jitter)

    def centered(self, in_window: int, out_window: int) -> "Windows":
        """The unjittered windows of the model's size."""
        j = self.max_jitter
        return Windows(
            X=self.X[:, :, j:j + in_window],
            y=None if self.y is None else self.y[:, :, j:j + out_window],
            X_ctl=None if self.X_ctl is None else self.X_ctl[:, :, j:j + in_window],
            loci=self.loci,
        )


def windows_fit(table: pd.DataFrame, sizes: dict[str, int], width: int, max_jitter: int = 0) -> np.ndarray:
    """Whether each locus's window lies within its chromosome, shape (N,), bool.

    The window is `width` bp (plus `max_jitter` on each side) placed as
    tangermeme places it: from ``center - width // 2``. This is the one rule
    for windows at chromosome ends: every stage drops such windows and
    counts them in its log.
    """
    centers = table["center"].to_numpy()
    lengths = table["chrom"].map(sizes).to_numpy()
    return (centers - width // 2 - max_jitter >= 0) & (centers - width // 2 + width + max_jitter <= lengths)


def load_windows(
    loci: str | Sequence[str],
    sequences: str,
    signals: Sequence[str] | None = None,
    controls: Sequence[str] | None = None,
    chroms: Sequence[str] | None = None,
    in_window: int = 2114,
    out_window: int = 1000,
    max_jitter: int = 0,
    min_counts: float | None = None,
    max_counts: float | None = None,
    key: str = "loci",
    verbose: bool = False,
) -> Windows:
    """Read the windows of sequence, signals and controls around loci.

    Loci are dropped, and each reason counted in the log, when they lie on
    a chromosome not in `chroms`, when a window (with jitter) runs off the
    chromosome's end, when the sequence window holds a non-ACGT base (N), or
    when the total signal counts in the output window (all tracks) fall
    outside [min_counts, max_counts].

    Parameters
    ----------
    loci : str or list of str
        BED / narrowPeak files (see `bpnet_core.io.read_loci`).
    sequences : str
        Genome FASTA.
    signals, controls : list of str, optional
        bigWig files; signals are read over the output window, controls over
        the input window.
    chroms : list of str, optional
        Keep only loci on these chromosomes.
    in_window, out_window, max_jitter : int
        Window sizes in bp; windows are read `max_jitter` wider on each side.
    min_counts, max_counts : float, optional
        Bounds on the total signal counts.
    key : str
        Config key of `loci`, for messages.
    verbose : bool
        Show progress while reading.

    Returns
    -------
    Windows

    Raises
    ------
    InputError
        When no locus is left, with the count each filter dropped.
    """
    from tangermeme.io import extract_loci

    table = read_loci(loci, key=key)
    sizes = fasta_chrom_sizes(sequences)
    counts = {"read": len(table)}

    if chroms is not None:
        on = table["chrom"].isin(list(chroms))
        counts["on other chromosomes"] = int((~on).sum())
        table = table[on]
    unknown = sorted(set(table["chrom"]) - sizes.keys())
    if unknown:
        files = ", ".join(as_list(loci))
        raise InputError(
            f"{files} (config key '{key}'): chromosomes not in the FASTA {sequences}: "
            f"{', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''} "
            f"(the FASTA has {', '.join(list(sizes)[:5])} ...)"
        )

    within_chromosomes(table, sizes, loci, sequences, key)
    fits = windows_fit(table, sizes, max(in_window, out_window), max_jitter)
    counts["off a chromosome end"] = int((~fits).sum())
    table = table[fits].reset_index(drop=True)

    X = y = X_ctl = None
    if len(table):
        # A one-base interval at the centre: tangermeme centres windows on
        # start + (end - start) // 2.
        intervals = pd.DataFrame({
            "chrom": table["chrom"], "start": table["center"], "end": table["center"] + 1,
        })
        extracted = extract_loci(
            intervals, sequences,
            signals=as_list(signals) or None,
            in_signals=as_list(controls) or None,
            in_window=in_window, out_window=out_window, max_jitter=max_jitter,
            verbose=verbose, n_jobs=min(4, torch.get_num_threads()), return_mask=True,
        )
        extracted = list(extracted)
        # Same off-end rule as above, so the mask should keep every row; it
        # keeps `table` aligned with the tensors if the rules ever differ.
        table = table[extracted.pop().numpy()].reset_index(drop=True)
        X = extracted.pop(0)
        y = extracted.pop(0).float() if signals else None
        X_ctl = extracted.pop(0).float() if controls else None
        centers = table["center"].to_numpy()
        for key_, paths, width in (("signals", signals, out_window), ("controls", controls, in_window)):
            for i, path in enumerate(as_list(paths)):
                check_track_values(path, f"{key_}[{i}]", table["chrom"].to_numpy(),
                                   centers - width // 2 - max_jitter, width + 2 * max_jitter)

        # Peak memory matters here (100k windows hold about 4 GB): a bool
        # mask rather than an int64 sum of X, and no copies when every
        # window is kept.
        keep = X.any(dim=1).all(dim=1)
        counts["with N in the sequence"] = int((~keep).sum())
        if y is not None:
            j = max_jitter
            total = y[:, :, j:j + out_window].sum(dim=(1, 2))
            low = total < (min_counts if min_counts is not None else -np.inf)
            high = total > (max_counts if max_counts is not None else np.inf)
            counts["below min_counts"] = int((low & keep).sum())
            counts["above max_counts"] = int((high & keep).sum())
            keep &= ~low & ~high
        if not keep.all():
            idx = torch.nonzero(keep).flatten()
            X = X[idx]
            y = None if y is None else y[idx]
            X_ctl = None if X_ctl is None else X_ctl[idx]
            table = table.iloc[idx.numpy()].reset_index(drop=True)

    counts["kept"] = len(table)
    summary = "; ".join(f"{n} {reason}" for reason, n in counts.items())
    log.info("loci from %s: %s", ", ".join(as_list(loci)), summary)
    if len(table) == 0:
        raise InputError(
            f"{', '.join(as_list(loci))} (config key '{key}'"
            f"{', chroms ' + ','.join(chroms) if chroms is not None else ''}): no loci left "
            f"after filtering ({summary})"
        )
    return Windows(X=X, y=y, X_ctl=X_ctl, loci=table, max_jitter=max_jitter)


def window_counts(loci: str | Sequence[str], sequences: str, signals: Sequence[str],
                  chroms: Sequence[str], width: int, key: str = "loci") -> np.ndarray:
    """Total signal counts (all tracks) in the `width` bp centred on each locus.

    Only loci on `chroms` whose window lies within the chromosome count;
    sequences are not read, so this is cheap for genome-wide peak sets.

    Returns
    -------
    numpy.ndarray, shape (n_loci,)
        Counts (reads), NaN read as 0.
    """
    from figwig import BigWigReader

    table = read_loci(loci, key=key)
    sizes = fasta_chrom_sizes(sequences)
    table = table[table["chrom"].isin(list(chroms)) & table["chrom"].isin(list(sizes))]
    within_chromosomes(table, sizes, loci, sequences, key)
    table = table[windows_fit(table, sizes, width)]
    names, starts = table["chrom"].to_numpy(), table["center"].to_numpy() - width // 2
    totals = np.zeros(len(table))
    for path in signals:
        reader = BigWigReader(path)
        for i in range(0, len(table), 10_000):
            totals[i:i + 10_000] += reader.read(names[i:i + 10_000], starts[i:i + 10_000], width,
                                                n_jobs=2).sum(axis=1)
    return totals


def check_track_values(path: str, key: str, chroms: np.ndarray, starts: np.ndarray, width: int) -> None:
    """Raise InputError if a bigWig holds NaN or negative values in the windows.

    Signals and controls are read counts. tangermeme's reader turns NaN into
    0, which would hide a broken track, so the windows are read again here
    with NaN kept (figwig, the reader tangermeme uses).
    """
    from figwig import BigWigReader

    values = BigWigReader(path).read(chroms, starts, width, keep_nan=True, n_jobs=2)
    for problem, bad in (("NaN", np.isnan(values)), ("negative", values < 0)):
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise InputError(
                f"{path} (config key '{key}'): {int(bad.sum())} {problem} value(s) in the windows read, "
                f"the first at {chroms[row]}:{int(starts[row]) + int(col)}; a signal or control track "
                "must hold read counts (>= 0)"
            )


def reverse_complement_tracks(tracks: torch.Tensor) -> torch.Tensor:
    """Tracks of the reverse-complement strand, shape (N, S, L) -> (N, S, L).

    Positions are reversed; with an even number of tracks, each (plus, minus)
    pair is swapped, since a read on the plus strand of the sequence is on
    the minus strand of its reverse complement.
    """
    n, s, length = tracks.shape
    if s % 2 == 0:
        return tracks.reshape(n, s // 2, 2, length).flip(dims=(2, 3)).reshape(n, s, length)
    return tracks.flip(dims=(2,))


def reverse_complement_sequence(X: torch.Tensor) -> torch.Tensor:
    """Reverse complement of one-hot sequences (A, C, G, T), shape (N, 4, L)."""
    return X.flip(dims=(1, 2))


class TrainingSampler:
    """Shuffled, jittered, randomly reverse-complemented training batches.

    Iterating gives the rest of the current epoch, or a new epoch when the
    last one is done. `state_dict` / `load_state_dict` capture the position
    within an epoch, so that training resumed from a checkpoint sees exactly
    the batches that an uninterrupted run would have seen.

    Parameters
    ----------
    windows : Windows
        Windows read with `max_jitter` of flank.
    batch_size : int
    in_window, out_window : int
    reverse_complement : bool
        Reverse-complement each example with probability 0.5.
    random_state : int or None
        Seed of the shuffling, jitter and reverse complement.
    n_always : int, optional
        With `n_sampled`: rows ``[0, n_always)`` (e.g. peaks) are in every
        epoch, and `n_sampled` of the other rows (e.g. background regions)
        are drawn afresh for each epoch. None: every row, every epoch.
    n_sampled : int
    """

    def __init__(self, windows: Windows, batch_size: int, in_window: int, out_window: int,
                 reverse_complement: bool = True, random_state: int | None = None,
                 n_always: int | None = None, n_sampled: int = 0):
        self.windows = windows
        self.n_always = n_always
        self.n_sampled = 0 if n_always is None else min(n_sampled, len(windows) - n_always)
        self.batch_size = batch_size
        self.in_window = in_window
        self.out_window = out_window
        self.reverse_complement = reverse_complement
        self.generator = torch.Generator()
        if random_state is None:
            self.generator.seed()  # from the OS, leaving torch's global generator alone
        else:
            self.generator.manual_seed(random_state)
        self.epoch = 0
        self.order: torch.Tensor | None = None
        self.position = 0

    @property
    def epoch_size(self) -> int:
        """Examples per epoch."""
        return len(self.windows) if self.n_always is None else self.n_always + self.n_sampled

    def __len__(self) -> int:
        """Batches per epoch (the last, partial batch is dropped)."""
        return max(self.epoch_size // self.batch_size, 1)

    def _epoch_order(self) -> torch.Tensor:
        n = self.epoch_size if self.n_always is None else self.n_always
        rows = torch.arange(n)
        if self.n_sampled:
            drawn = torch.randperm(len(self.windows) - n, generator=self.generator)[:self.n_sampled]
            rows = torch.cat([rows, n + drawn])
        return rows[torch.randperm(len(rows), generator=self.generator)]

    @property
    def epoch_done(self) -> bool:
        """Whether the last epoch started has given all its batches."""
        return self.order is None

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]]:
        """Batches ``(X, X_ctl, y, always)`` to the end of the epoch; X is float32.

        `always` (shape (B,), bool) marks the rows drawn every epoch (the
        peaks, with `n_always`); all True without `n_always`.
        """
        w = self.windows
        if self.order is None:
            self.order = self._epoch_order()
            self.position = 0
            self.epoch += 1
        size = min(self.batch_size, self.epoch_size)
        while self.position < len(self):
            rows = self.order[self.position * size:(self.position + 1) * size]
            self.position += 1
            if self.position == len(self):
                self.order = None
            shift = torch.randint(0, 2 * w.max_jitter + 1, (len(rows), 1, 1), generator=self.generator)
            X = _crop(w.X[rows], shift, self.in_window).float()
            y = _crop(w.y[rows], shift, self.out_window)
            X_ctl = None if w.X_ctl is None else _crop(w.X_ctl[rows], shift, self.in_window)
            if self.reverse_complement:
                flip = torch.rand(len(rows), generator=self.generator) < 0.5
                X[flip] = reverse_complement_sequence(X[flip])
                y[flip] = reverse_complement_tracks(y[flip])
                if X_ctl is not None:
                    X_ctl[flip] = reverse_complement_tracks(X_ctl[flip])
            always = rows < self.n_always if self.n_always is not None else torch.ones(len(rows), dtype=torch.bool)
            yield X, X_ctl, y, always
            if self.order is None:
                return

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "epoch": self.epoch,
                "order": self.order, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.epoch, self.order, self.position = state["epoch"], state["order"], state["position"]


def _crop(tracks: torch.Tensor, shift: torch.Tensor, width: int) -> torch.Tensor:
    """Per-example windows ``tracks[i, :, shift[i]:shift[i] + width]``."""
    index = shift + torch.arange(width).view(1, 1, -1)
    return torch.gather(tracks, 2, index.expand(tracks.shape[0], tracks.shape[1], width))
