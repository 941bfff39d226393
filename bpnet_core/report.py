"""One self-contained HTML page summarising a finished pipeline run.

Every figure is embedded as a base64 PNG, so the page opens offline and can
be moved or mailed on its own. A section appears only when the stage that
feeds it wrote its files; otherwise a one-line note says the stage did not run,
unless the section does not apply to the run (no input made from raw files; the
ChromBPNet checks on a BPNet page). The page is titled by its pipeline.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyBigWig
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from . import layout
from .bias_qc import enrichment_text
from .io import ALPHABET, atomic_output, meme_names, motif_label
from .marginalize import figure_name
from .models import ChromBPNet, load_model
from .pages import BASE_COLORS  # noqa: F401 (the logos' colours, here as before)
from .pages import Html, draw_logo, embed, img, lines, new_figure, page, table
from .predict import predicted_tracks

LOGO_WIDTH = 100  # central bases shown as a contribution logo under each example
N_MARGINALIZE_FIGURES = 3

def _resolve(path: str, results_dir: Path) -> Path:
    # Pipeline configs usually name inputs relative to the Snakemake working
    # directory, which is two levels above results/<name>/.
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    return results_dir.parent.parent / path


def _history(history_path: Path, model_path: Path) -> str:
    """Loss curves of one training run, with its chosen checkpoint, time and model facts."""
    history = pd.read_csv(history_path, sep="\t")
    best = history.loc[history.get("selection_loss", history["valid_loss"]).idxmin()]  # the kept checkpoint
    figure = new_figure(10, 3.2)
    for ax, part in zip(figure.subplots(1, 2), ("profile", "count")):
        for split, color in (("train", "tab:blue"), ("valid", "tab:orange")):
            ax.plot(history["iteration"], history[f"{split}_{part}_loss"], color=color,
                    label="validation" if split == "valid" else "training")
        ax.axvline(best["iteration"], color="grey", linestyle="--", label="chosen checkpoint")
        ax.set(title=f"{part} loss", xlabel="iteration", ylabel="loss")
        ax.legend(fontsize=8)
    figure.tight_layout()

    last = history.iloc[-1]
    facts = {
        "chosen checkpoint (iteration)": int(best["iteration"]),
        "best validation loss": f"{best['valid_loss']:.4g}",
        "training seconds": f"{last['elapsed_s']:.1f}",
        "examples / s": f"{last['examples_per_s']:.1f}",
    }
    if model_path.is_file():
        metadata = load_model(model_path).metadata
        if "device" in metadata:
            facts["device"] = metadata["device"]
        if "n_parameters" in metadata:
            facts["parameters"] = f"{metadata['n_parameters']:,}"
    items = "".join(f"<li>{html.escape(k)}: {html.escape(str(v))}</li>" for k, v in facts.items())
    return f"<ul>{items}</ul>\n{embed(figure)}"


def _training(results_dir: Path, name: str) -> str | None:
    """The main model's training curves (each fold's, for a fold ensemble) and, for ChromBPNet,
    those of its bias model."""
    main = (layout.under(results_dir, "history", name), layout.under(results_dir, "model", name))
    bias = (layout.under(results_dir, "bias_history", name), layout.under(results_dir, "bias_model", name))
    folds = [(fold, layout.fold_under(results_dir, "history", name, fold),
              layout.fold_under(results_dir, "model", name, fold)) for fold in layout.existing_folds(results_dir)]
    folds = [fold for fold in folds if fold[1].is_file()]
    if folds and not main[0].is_file():
        label = "ChromBPNet model" if bias[0].is_file() else "Model"
        parts = [f"<h3>{label}, {html.escape(fold)}</h3>\n{_history(history, model)}" for fold, history, model in folds]
        if bias[0].is_file():
            parts.append(f"<h3>Bias model (shared by the folds)</h3>\n{_history(*bias)}")
        return "\n".join(parts)
    if not bias[0].is_file():
        return _history(*main) if main[0].is_file() else None
    # ChromBPNet trains twice: the bias model first, then the accessibility
    # model on top of it (frozen); a bias model that did not fit explains a lot.
    parts = []
    if main[0].is_file():
        parts.append(f"<h3>ChromBPNet model (accessibility model over the frozen bias model)</h3>\n"
                     f"{_history(*main)}")
    parts.append(f"<h3>Bias model</h3>\n{_history(*bias)}")
    return "\n".join(parts)


def _performance(results_dir: Path, name: str) -> str | None:
    performance_path = layout.under(results_dir, "performance", name)
    if not performance_path.is_file():
        return None
    parts = [table(pd.read_csv(performance_path, sep="\t"))]
    regions_path = layout.under(results_dir, "regions", name)
    if regions_path.is_file():
        regions = pd.read_csv(regions_path, sep="\t")
        observed, predicted = regions["observed_log_counts"], regions["predicted_log_counts"]
        figure = new_figure(9, 3.5)
        scatter, histogram = figure.subplots(1, 2)
        scatter.scatter(observed, predicted, s=6, alpha=0.6)
        low, high = np.nanmin([observed.min(), predicted.min()]), np.nanmax([observed.max(), predicted.max()])
        scatter.plot([low, high], [low, high], color="grey", linewidth=0.8)
        scatter.set(title=f"log counts, Pearson r = {observed.corr(predicted):.3f}",
                    xlabel="observed log(1 + counts)", ylabel="predicted log(1 + counts)")
        histogram.hist(regions["profile_jsd"].dropna(), bins=30, color="tab:purple")
        histogram.set(title="profile Jensen-Shannon distance", xlabel="JSD", ylabel="regions")
        figure.tight_layout()
        parts.append(embed(figure))
    return "\n".join(parts)


def _folds(results_dir: Path, name: str) -> str | None:
    """A fold ensemble: each fold's held-out metrics, their mean and sd, and what was averaged."""
    path = layout.under(results_dir, "fold_table", name)
    if not path.is_file():
        return None
    folds = pd.read_csv(path, sep="\t", dtype={"test_chroms": str}).fillna({"test_chroms": ""})
    n_folds = int((~folds["fold"].isin(("mean", "sd"))).sum())
    averaged = ""
    counts = layout.under(results_dir, "counts", name)
    if counts.is_file():
        with np.load(counts) as npz:
            if "n_dropped" in npz.files:
                averaged = (f" over the {len(npz['arr_0']):,} regions every fold predicted "
                            f"({int(npz['n_dropped'])} dropped because some fold could not score them)")
    return (f"<p>{n_folds} models, one per fold: each trained and validated on its own chromosomes and "
            f"evaluated on its test chromosomes, which it never saw (held-out metrics, then their mean and "
            f"standard deviation over folds; the Performance section shows the mean). The predictions, "
            f"contributions, motifs and marginalization of this page are the folds' averages{averaged}; "
            f"each fold's own files are under <code>{html.escape(layout.FILES['folds'])}/</code>.</p>\n"
            f"{table(folds)}")


def _observed(signals: list[Path], chrom: str, start: int, end: int) -> np.ndarray:
    """Reads per base in [start, end) of each signal bigWig, shape (S, L)."""
    tracks = []
    for path in signals:
        with pyBigWig.open(str(path)) as bigwig:
            tracks.append(np.nan_to_num(np.asarray(bigwig.values(chrom, start, end), dtype=np.float64)))
    return np.stack(tracks)


def logo_matrix(scores: np.ndarray, sequence: str) -> np.ndarray:
    """Per-base contributions as a logo matrix (L, 4; columns A, C, G, T): each
    score in its observed base's column, zeros elsewhere (and for an N)."""
    matrix = np.zeros((len(scores), len(ALPHABET)))
    for x, (base, score) in enumerate(zip(sequence, scores)):
        if base in ALPHABET:
            matrix[x, ALPHABET.index(base)] = score
    return matrix


def coordinate_axis(ax, chrom: str) -> None:
    """Label `ax`'s x axis with genomic coordinates (``20,009,000``), not an offset (``+2.0009e7``)."""
    # A FuncFormatter has no offset text: every tick reads as the position itself.
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    ax.set_xlabel(f"{chrom} (bp)")


def _draw_tracks(ax, positions: np.ndarray, tracks: np.ndarray, color: str, label: str,
                 width: float = 0.9) -> None:
    """Per-base tracks (S, L); stranded pairs as in BPNet: plus drawn up, minus drawn down."""
    stranded = len(tracks) % 2 == 0
    for track in range(len(tracks)):
        sign = -1 if stranded and track % 2 else 1
        ax.plot(positions, sign * tracks[track], color=color, linewidth=width,
                label=label if track == 0 else None)


def locus_figure(chrom: str, start: int, observed: np.ndarray, predicted: np.ndarray, title: str,
                 prediction_label: str = "predicted", bias_free: np.ndarray | None = None,
                 logo: tuple[np.ndarray, str, int] | None = None) -> Figure:
    """One example locus: observed against predicted reads, then (optionally) the
    bias-free prediction on its own axis and a contribution logo.

    Parameters
    ----------
    chrom : str
    start : int
        Genomic position of the first base of the tracks.
    observed, predicted : numpy.ndarray, shape (S, L)
        Reads per base; `predicted` is the prediction of the model of the observed
        reads (for ChromBPNet, the full model, bias included).
    title : str
    prediction_label : str
        Legend entry of `predicted`.
    bias_free : numpy.ndarray, shape (S, L), optional
        ChromBPNet's accessibility (bias-free) prediction; it is far below the
        observed reads, so it gets an axis of its own.
    logo : (scores, sequence, start), optional
        Contributions and bases of a central stretch, and its first base's position.

    Returns
    -------
    matplotlib.figure.Figure
    """
    rows = ["tracks"] + (["bias_free"] if bias_free is not None else []) + (["logo"] if logo else [])
    ratios = {"tracks": 2, "bias_free": 1.2, "logo": 1}
    figure = new_figure(10, 1.4 + 1.4 * sum(ratios[row] for row in rows))
    axes = dict(zip(rows, figure.subplots(len(rows), 1, squeeze=False,
                                          gridspec_kw={"height_ratios": [ratios[row] for row in rows]})[:, 0]))
    positions = np.arange(start, start + observed.shape[-1])
    stranded = len(observed) % 2 == 0
    ylabel = "reads (+ up, - down)" if stranded else "reads"

    track_ax = axes["tracks"]
    _draw_tracks(track_ax, positions, observed, "black", "observed", width=0.7)
    _draw_tracks(track_ax, positions, predicted, "tab:red", prediction_label)
    track_ax.axhline(0, color="grey", linewidth=0.5)
    track_ax.set(title=title, ylabel=ylabel)
    track_ax.legend(fontsize=8, loc="upper right")
    coordinate_axis(track_ax, chrom)
    if bias_free is not None:
        free_ax = axes["bias_free"]
        free_ax.sharex(track_ax)
        _draw_tracks(free_ax, positions, bias_free, "tab:green", "predicted, accessibility model (bias removed)")
        free_ax.axhline(0, color="grey", linewidth=0.5)
        free_ax.set(ylabel=f"bias-free {ylabel}")
        free_ax.legend(fontsize=8, loc="upper right")
        coordinate_axis(free_ax, chrom)
    if logo:
        scores, sequence, logo_start = logo
        # Negative contributions give an upside-down letter below the axis.
        draw_logo(axes["logo"], logo_matrix(scores, sequence), pad=0.05)
        axes["logo"].set(ylabel="contribution", xlabel=f"central {len(scores)} bp: "
                         f"{chrom}:{logo_start:,}-{logo_start + len(scores):,}")
    figure.tight_layout()
    return figure


def _chrombpnet_tracks(model: ChromBPNet, one_hot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reads per base (S, L) the full model and its accessibility model predict from one input window.

    The predict stage writes only one of the two (by default the accessibility
    model's); three windows through the model on the CPU take well under a second.
    """
    X = torch.from_numpy(np.ascontiguousarray(one_hot[None], dtype=np.float32))
    with torch.no_grad():
        outputs = [model(X), model.accessibility(X)]
    return tuple(predicted_tracks(logits.float().numpy(), counts.float().numpy().reshape(-1))[0]
                 for logits, counts in outputs)


def _central_logo(scores: np.ndarray, one_hot: np.ndarray, center: int) -> tuple[np.ndarray, str, int]:
    """The `LOGO_WIDTH` central bases of an input window centred on `center`: their
    contributions, sequence and first base's genomic position."""
    middle = len(scores) // 2
    window = slice(max(middle - LOGO_WIDTH // 2, 0), middle + LOGO_WIDTH // 2)
    central = one_hot[:, window]
    sequence = "".join(ALPHABET[i] if central[i, x] else "N" for x, i in enumerate(central.argmax(axis=0)))
    return scores[window], sequence, center - one_hot.shape[-1] // 2 + window.start


def _examples(results_dir: Path, name: str, model_path: Path, signals: list[str] | None = None) -> str | None:
    """The example loci; `signals` (the evaluate stage's) stand in for the model's own record of its
    signals, which a model imported from another program does not have."""
    needed = [layout.under(results_dir, key, name) for key in ("attributed_loci", "attr", "ohe", "profile", "counts")]
    needed.append(model_path)
    if not all(path.is_file() for path in needed):
        return None
    loci = pd.read_csv(needed[0], sep="\t")
    with np.load(needed[1]) as attr_file, np.load(needed[2]) as ohe_file:
        ohe = ohe_file["arr_0"]
        projected = (attr_file["arr_0"] * ohe).sum(axis=1)
    with np.load(needed[3]) as profile_file, np.load(needed[4]) as counts_file:
        logits = profile_file["arr_0"]
        log_counts = counts_file["arr_0"].reshape(-1)
        windows = pd.DataFrame({"chrom": profile_file["chrom"].astype(str),
                                "start": profile_file["start"], "end": profile_file["end"]})
    windows["center"] = (windows["start"] + windows["end"]) // 2
    windows["row"] = np.arange(len(windows))
    loci["locus"] = np.arange(len(loci))
    matched = loci[["chrom", "center", "locus"]].astype({"chrom": str}).merge(windows, on=["chrom", "center"])
    if matched.empty:
        return '<p class="missing">No attributed locus has a prediction.</p>'

    model = load_model(needed[5])
    signals = [_resolve(path, results_dir) for path in model.metadata.get("signals") or signals or []]
    if not signals:
        return '<p class="missing">The model does not say which signals it predicts.</p>'

    observed = {row.locus: _observed(signals, row.chrom, int(row.start), int(row.end))
                for row in matched.itertuples()}
    matched["observed_total"] = matched["locus"].map(lambda locus: observed[locus].sum())
    matched = matched.sort_values("observed_total", ascending=False).reset_index(drop=True)
    picks = {"highest": 0, "median": len(matched) // 2, "lowest": len(matched) - 1}

    parts = []
    for label, index in picks.items():
        row = matched.iloc[index]
        locus = row["locus"]
        predicted = predicted_tracks(logits[[row["row"]]], log_counts[[row["row"]]])[0]
        prediction_label, bias_free = "predicted", None
        if isinstance(model, ChromBPNet):
            full, free = _chrombpnet_tracks(model, ohe[locus])
            if full.shape == predicted.shape:
                # The full model predicts the observed reads (bias included); the
                # bias-free prediction is far below them and gets its own axis.
                predicted, bias_free, prediction_label = full, free, "predicted, full model (bias included)"
            else:
                prediction_label = "predicted by the predict stage's model"
        figure = locus_figure(
            row["chrom"], int(row["start"]), observed[locus], predicted,
            f"{label} observed counts: {row['chrom']}:{row['start']:,}-{row['end']:,} "
            f"(total {row['observed_total']:.0f})",
            prediction_label, bias_free, _central_logo(projected[locus], ohe[locus], int(row["center"])))
        parts.append(f"<h3>{label.capitalize()}</h3>\n{embed(figure)}")
    if isinstance(model, ChromBPNet):
        parts.insert(0, "<p>Observed reads against the full model's prediction (bias included), which "
                        "predicts them; below, the accessibility model's bias-free prediction on its own "
                        "axis: it leaves out the enzyme's share of the reads.</p>")
    return "\n".join(parts)


def _motifs(results_dir: Path, names: dict[str, str]) -> str | None:
    table_path = layout.under(results_dir, "modisco_report_table")
    if not table_path.is_file():
        return None
    motifs = pd.read_csv(table_path, sep="\t")
    logos = layout.under(results_dir, "modisco_report") / "logos"
    rows = []
    for _, motif in motifs.iterrows():
        logo_path = logos / f"{motif['pattern']}.cwm.fwd.png"
        logo = img(logo_path.read_bytes(), f"{motif['pattern']} CWM") if logo_path.is_file() else ""
        matches = [f"{motif_label(str(motif[f'match{i}']), names)} (q = {motif[f'qvalue{i}']:.2g})"
                   for i in range(3) if f"match{i}" in motif and pd.notna(motif[f"match{i}"])]
        rows.append({"pattern": motif["pattern"], "seqlets": motif["n_seqlets"],
                     "forward CWM": Html(logo), "matches": lines(matches)})
    folds = layout.existing_folds(results_dir)
    intro = (f"<p>TF-MoDISco on the contributions averaged over the {len(folds)} folds' models.</p>\n"
             if folds else "")
    return intro + table(rows)


N_HIT_PATTERNS = 10  # patterns with the most hits listed in the report


def _motif_hits(results_dir: Path, name: str, names: dict[str, str]) -> str | None:
    """Fi-NeMo's hits: counts per pattern, where they fall around the summits, links to the files."""
    counts_path = layout.under(results_dir, "hit_counts", name)
    if not counts_path.is_file():
        return None
    counts = pd.read_csv(counts_path, sep="\t")
    links = ", ".join(f'<code>{html.escape(layout.relative(key, name))}</code>' for key in ("hits", "hits_bed"))
    report = layout.under(results_dir, "finemo_report", name)
    finemo = (f'; <a href="{html.escape(layout.relative("finemo_report", name))}">Fi-NeMo\'s report</a>'
              if report.is_file() else "")
    intro = (f"<p>{int(counts['hits'].sum()):,} motif instances called by Fi-NeMo in the attributed "
             f"regions, {len(counts)} patterns. Every hit, in genome coordinates: {links}{finemo}.</p>")
    if counts.empty:
        return intro
    rows = [{"pattern": c.pattern, "motif": motif_label(str(c.motif), names),
             "kind": "" if pd.isna(getattr(c, "kind", None)) else c.kind, "hits": int(c.hits),
             "regions with a hit": f"{int(c.regions):,} ({c.fraction_of_regions:.0%})"}
            for c in counts.head(N_HIT_PATTERNS).itertuples(index=False)]
    positions = layout.under(results_dir, "hit_positions", name)
    figure = img(positions.read_bytes(), "hit positions around the summits") if positions.is_file() else ""
    return intro + table(rows) + figure


def _inputs(results_dir: Path) -> str | None:
    """Model inputs the pipeline made from raw files: counts, peaks, GC of the negatives."""
    folder = layout.under(results_dir, "inputs")
    if not folder.is_dir():
        return None
    rows = []
    for path in sorted(folder.glob("*.bw")):
        with pyBigWig.open(str(path)) as bw:
            rows.append({"file": path.name, "what": "5'-end counts of the reads",
                         "size": f"{bw.header()['sumData']:,.0f} counts"})
    peaks = layout.under(results_dir, "peaks")
    if peaks.is_file():
        peak_table = pd.read_csv(peaks, sep="\t", header=None, usecols=[1, 2])
        rows.append({"file": peaks.name, "what": "MACS3 peaks",
                     "size": f"{len(peak_table):,} peaks, "
                             f"median width {int((peak_table[2] - peak_table[1]).median())} bp"})
    gc_path = layout.under(results_dir, "negatives_gc")
    parts = []
    if gc_path.is_file():
        from scipy.stats import ks_2samp

        gc = pd.read_csv(gc_path, sep="\t")
        peaks_gc, negatives_gc = (gc.loc[gc["set"] == kind, "gc"].to_numpy() for kind in ("peaks", "negatives"))
        rows.append({"file": layout.under(results_dir, "negatives").name, "what": "GC-matched background regions",
                     "size": f"{len(negatives_gc):,} regions"})
        test = ks_2samp(peaks_gc, negatives_gc)
        figure = new_figure(5, 3)
        ax = figure.subplots()
        bins = np.linspace(min(peaks_gc.min(), negatives_gc.min()), max(peaks_gc.max(), negatives_gc.max()), 31)
        for values, label, color in ((peaks_gc, "peaks", "#D62839"), (negatives_gc, "negatives", "#255C99")):
            ax.hist(values, bins=bins, density=True, histtype="step", lw=2, color=color,
                    label=f"{label} (n = {len(values)}, mean {values.mean():.3f})")
        ax.set_xlabel("GC fraction of the input window")
        ax.set_ylabel("density")
        ax.legend(frameon=False, fontsize=8)
        parts.append(f"<p>GC content of peaks and negatives: two-sample Kolmogorov-Smirnov statistic "
                     f"{test.statistic:.3f} (p = {test.pvalue:.2g}).</p>\n{embed(figure)}")
    if not rows:
        return None
    intro = ("<p>The pipeline made these model inputs from raw files (reads, or no peaks or "
             "negatives given); the other inputs were used as given.</p>")
    return "\n".join([intro, table(rows), *parts])


def _bias_qc(results_dir: Path, names: dict[str, str]) -> str | None:
    qc_path = layout.under(results_dir, "bias_qc_json")
    if not qc_path.is_file():
        return None
    qc = json.loads(qc_path.read_text())
    unchecked = ("" if qc.get("tf_motif_check", True) else
                 "<p class='missing'>No motif database was given (bias_qc_parameters.motifs): "
                 "the bias model's patterns were not checked for TF motifs.</p>")
    verdict = unchecked + ("<p class='flag'><b>Flagged:</b> " + lines(qc["reasons"])
               + (" (accepted by bias_qc_parameters.accept)" if qc.get("accept") else "") + "</p>"
               if qc["flagged"] else "<p class='pass'><b>Passed:</b> every matched pattern of the bias model is an "
               "enzyme-bias motif, its count Pearson r is within the official bounds, and it predicts little of the "
               "peaks' enrichment.</p>")
    verdict += "".join(f"<p class='flag'><b>Warning:</b> {html.escape(w)}.</p>" for w in qc.get("warnings", []))
    pearson = pd.DataFrame([{"regions": split, "n": v["n_regions"], "count Pearson r": round(v["pearson"], 3),
                             "required": f"> {qc['min_pearson'][split]}"}
                            for split, v in qc["count_pearson"].items()])
    # The logos that the QC's TF-MoDISco report drew next to its motif table.
    logos = layout.under(results_dir, "bias_qc_motifs").parent / "logos"
    rows = []
    for pattern in qc["patterns"]:
        logo_path = logos / f"{pattern['pattern']}.cwm.fwd.png"
        logo = img(logo_path.read_bytes(), pattern["pattern"]) if logo_path.is_file() else ""
        rows.append({"pattern": pattern["pattern"], "seqlets": pattern["n_seqlets"], "forward CWM": Html(logo),
                     "best match": motif_label(pattern["best_match"] or "", names),
                     "q": "" if pattern["qvalue"] is None else f"{pattern['qvalue']:.2g}",
                     "kind": pattern["kind"] + (f" ({pattern['complexity']})" if pattern.get("complexity") else "")})
    patterns = table(rows) if rows else "<p>No TF-MoDISco pattern.</p>"
    enrichment = f"<p>{html.escape(enrichment_text(qc['enrichment']))}</p>" if qc.get("enrichment") else ""
    return f"{verdict}\n{table(pearson)}\n{enrichment}\n<h3>Patterns of the bias model at peaks</h3>\n{patterns}"


def _bias_free(results_dir: Path) -> str | None:
    """The accessibility model's QC (`bpnet_core.bias_free_qc`): the verdict first, then the footprints."""
    qc_path = layout.under(results_dir, "bias_free_qc_json")
    if not qc_path.is_file():
        return None
    qc = json.loads(qc_path.read_text())
    verdict = ("<p class='pass'><b>Bias-free:</b> no footprint of an enzyme motif in the accessibility model, and no "
               "enzyme motif among its TF-MoDISco patterns.</p>" if qc["bias_free"] else
               "<p class='flag'><b>NOT bias-free:</b> " + lines(qc["reasons"])
               + "<br>Contributions, motifs and marginalization of this run may show the enzyme's "
               "preference.</p>")
    fold = qc["mean_footprint_fold"]
    parts = [verdict, f"<p>Enzyme motif footprints, mean maximum in units of a flat profile: accessibility "
                      f"model {fold['accessibility']:.2f} (bound {qc['max_footprint_fold']}), full model "
                      f"{fold['full']:.2f}.</p>"]
    figure = layout.under(results_dir, "bias_free_qc_figure")
    if figure.is_file():
        parts.append(img(figure.read_bytes(), "marginal footprints of the enzyme motifs"))
    return "\n".join(parts)


def bias_free_verdict(results_dir: str | os.PathLike) -> str | None:
    """A one-line banner for the top of a report: None when the accessibility model was not checked."""
    path = layout.under(results_dir, "bias_free_qc_json")
    if not path.is_file():
        return None
    qc = json.loads(path.read_text())
    if qc["bias_free"]:
        return "<p class='pass'><b>Accessibility model: bias-free</b> (see Accessibility model QC).</p>"
    return ("<p class='flag'><b>Accessibility model: NOT bias-free.</b> Read its motifs and "
            "marginalization with care; see <a href='#bias_free_qc'>Accessibility model QC</a>.</p>")


def _marginalization(results_dir: Path, names: dict[str, str]) -> str | None:
    folder = layout.under(results_dir, "marginalize")
    summary_path = layout.under(results_dir, "marginalize_summary")
    if not summary_path.is_file():
        return None
    summary = pd.read_csv(summary_path, sep="\t")
    shown = summary.assign(motif=summary["motif"].map(lambda motif: motif_label(motif, names)))
    parts = [table(shown)]
    bar = folder / "figures" / "delta_log_counts.png"
    if bar.is_file():
        parts.append(img(bar.read_bytes(), "change in predicted log counts per motif"))
    # The figure names carry the row index of summary.tsv as marginalize wrote it.
    for index in summary["delta_log_counts"].nlargest(N_MARGINALIZE_FIGURES).index:
        path = folder / "figures" / figure_name(index, summary.loc[index, "motif"])
        if path.is_file():
            parts.append(f"<h3>{html.escape(shown.loc[index, 'motif'])}</h3>\n"
                         f"{img(path.read_bytes(), summary.loc[index, 'motif'])}")
    return "\n".join(parts)


N_VARIANTS = 5  # strongest variants listed in the report (all are on the variants page)


def _variants(results_dir: Path, name: str) -> str | None:
    scores_path = layout.under(results_dir, "variant_scores", name)
    if not scores_path.is_file():
        return None
    from .variant_report import strongest

    scores = pd.read_csv(scores_path, sep="\t", dtype={"chrom": str, "ref": str, "alt": str, "id": str})
    top = strongest(scores, N_VARIANTS)
    columns = [c for c in ("chrom", "pos", "ref", "alt", "id", "logfc", "jsd", "active_allele_quantile",
                           "logfc_pval") if c in top]
    counts = scores["status"].value_counts()
    link = layout.relative("variant_html", name)
    return (f'<p>{len(scores):,} variants: {html.escape(", ".join(f"{n:,} {s}" for s, n in counts.items()))}. '
            f'The strongest, with their predicted profiles and contributions: '
            f'<a href="{html.escape(link)}">variants page</a>; every score: '
            f'<code>{html.escape(layout.relative("variant_scores", name))}</code>.</p>\n'
            + (table(top[columns]) if len(top) else ""))


def _config(config_params: dict | None) -> str | None:
    if not config_params:
        return None
    return "\n".join(
        f"<details><summary>{html.escape(str(stage))}</summary>"
        f"<pre>{html.escape(json.dumps(params, indent=2, sort_keys=True, default=str))}</pre></details>"
        for stage, params in config_params.items())


def model_file(results_dir: str | os.PathLike, name: str, config_params: dict | None = None) -> Path:
    """The (full) model of the run that made `results_dir`: the file its stages used.

    That is the evaluate stage's ``model`` in `config_params` (the pipeline's
    ``model``, as `bpnet_core.config.model_paths` chose it: a given file, or
    where the fit writes one), resolved as `_resolve` does; without it, where
    the fit writes the model (`bpnet_core.layout`).
    """
    model = ((config_params or {}).get("evaluate") or {}).get("model")
    return _resolve(model, Path(results_dir)) if model else layout.under(results_dir, "model", name)


def pipeline_kind(results_dir: str | os.PathLike, name: str, config_params: dict | None = None) -> str:
    """``"ChromBPNet"`` or ``"BPNet"``: the pipeline that made `results_dir`.

    From the stages of `config_params` (only ChromBPNet has a bias model), the
    bias-model folders, or else the metadata of the run's model (`model_file`).
    """
    if config_params and {"bias_fit", "bias_qc"} & config_params.keys():
        return "ChromBPNet"
    results_dir = Path(results_dir)
    if any(layout.under(results_dir, folder).is_dir() for folder in ("bias_fit", "bias_qc", "bias_free_qc")):
        return "ChromBPNet"
    model_path = model_file(results_dir, name, config_params)
    if model_path.is_file() and load_model(model_path).metadata.get("kind") == "chrombpnet":
        return "ChromBPNet"
    return "BPNet"


def motif_names(config_params: dict | None, base: Path) -> dict[str, str]:
    """Motif ID -> TF name, from every motif database the stages of `config_params` name.

    A database that cannot be read gives no names (its stage reported it);
    relative paths are resolved as `_resolve` does, from ``results/<name>/`` `base`.
    """
    names: dict[str, str] = {}
    for params in (config_params or {}).values():
        paths = params.get("motifs") if isinstance(params, dict) else None
        for path in [paths] if isinstance(paths, str) else (paths or []):
            try:
                names.update(meme_names(_resolve(path, base)))
            except (OSError, UnicodeDecodeError):
                continue
    return names


def write_dataset_report(results_dir: str | os.PathLike, name: str, output_html: str | os.PathLike,
                         config_params: dict | None = None) -> list[str]:
    """Write one self-contained HTML page summarising a pipeline run.

    Parameters
    ----------
    results_dir : str or os.PathLike
        ``results/<name>/`` of a pipeline run.
    name : str
        The dataset name (prefix of the files in `results_dir`).
    output_html : str or os.PathLike
        The page to write (atomically); figures are embedded as base64 PNGs.
    config_params : dict, optional
        Stage -> effective parameters, shown as collapsible JSON; the motif
        databases they name give the TF names of the motif matches, and the
        evaluate stage's ``model`` the model of the example loci (`model_file`:
        a given model file is never copied into `results_dir`).

    Returns
    -------
    list of str
        The ids of the sections written, in page order, among ``inputs``, ``training``,
        ``bias_qc``, ``bias_free_qc``, ``performance``, ``folds`` (fold ensembles only), ``examples``, ``motifs``,
        ``motif_hits``, ``marginalization``, ``variants`` and ``config``. The page is titled by its pipeline
        (`pipeline_kind`); a ChromBPNet run's page opens with the accessibility
        model's verdict. A section whose stage did not run is replaced by a note,
        except ``inputs`` (only when inputs were made from raw files) and, on a
        BPNet page, the ChromBPNet sections, which are left out.
    """
    results_dir = Path(results_dir)
    kind = pipeline_kind(results_dir, name, config_params)
    chrombpnet = kind == "ChromBPNet"
    names = motif_names(config_params, results_dir)
    model_path = model_file(results_dir, name, config_params)
    # A note of None leaves the section out silently: a note for what does not
    # apply (nothing converted; no bias model in BPNet) reads as a claim.
    sections = [
        ("inputs", "Inputs made from raw files", None, lambda: _inputs(results_dir)),
        ("training", "Training", "the fit stage did not run", lambda: _training(results_dir, name)),
        ("bias_qc", "Bias model QC", "the bias model was not checked" if chrombpnet else None,
         lambda: _bias_qc(results_dir, names)),
        ("bias_free_qc", "Accessibility model QC",
         "the accessibility model was not checked" if chrombpnet else None, lambda: _bias_free(results_dir)),
        ("performance", "Performance", "the evaluate stage did not run", lambda: _performance(results_dir, name)),
        ("folds", "Folds", None, lambda: _folds(results_dir, name)),
        ("examples", "Example loci", "the predict or attribute stage did not run",
         lambda: _examples(results_dir, name, model_path,
                           ((config_params or {}).get("evaluate") or {}).get("signals"))),
        ("motifs", "Motifs", "the TF-MoDISco stage did not run", lambda: _motifs(results_dir, names)),
        ("motif_hits", "Motif instances", None, lambda: _motif_hits(results_dir, name, names)),
        ("marginalization", "Marginalization", "the marginalize stage did not run",
         lambda: _marginalization(results_dir, names)),
        ("variants", "Variant effects", None, lambda: _variants(results_dir, name)),
        ("config", "Effective configuration", "no configuration was given", lambda: _config(config_params)),
    ]
    written, body = [], []
    for section_id, title, note, build in sections:
        content = build()
        if content is None:
            if note is not None:
                body.append(f'<p class="missing">{title}: {note}.</p>')
            continue
        written.append(section_id)
        body.append(f'<h2 id="{section_id}">{title}</h2>\n{content}')
    document = page(f"{kind} report: {name}", "\n".join([bias_free_verdict(results_dir) or "", *body]))
    with atomic_output(output_html) as tmp:
        tmp.write_text(document)
    return written
