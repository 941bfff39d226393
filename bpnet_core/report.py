"""One self-contained HTML page summarising a finished pipeline run.

Every figure is embedded as a base64 PNG, so the page opens offline and can
be moved or mailed on its own. A section appears only when the stage that
feeds it wrote its files; otherwise a one-line note says the stage did not run.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyBigWig
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import PathPatch
from matplotlib.textpath import TextPath
from matplotlib.transforms import Affine2D

from .io import atomic_output
from .marginalize import figure_name
from .models import load_model
from .predict import predicted_tracks

ALPHABET = "ACGT"
BASE_COLORS = {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "T": "#D62839"}
DPI = 90
LOGO_WIDTH = 100  # central bases shown as a contribution logo under each example
N_MARGINALIZE_FIGURES = 3

_STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 1100px; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
img { max-width: 100%; }
.missing { color: #888; font-style: italic; }
.done { color: #1a7f37; } .failed { color: #cf222e; }
"""


def _png(figure: Figure) -> str:
    """An <img> tag holding `figure` as a base64 PNG."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return _img(buffer.getvalue())


def _img(data: bytes, alt: str = "figure") -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt, quote=True)}">'


def _table(frame: pd.DataFrame, escape: bool = True) -> str:
    return frame.to_html(index=False, escape=escape, float_format=lambda x: f"{x:.4g}", border=0)




def _resolve(path: str, results_dir: Path) -> Path:
    # Pipeline configs usually name inputs relative to the Snakemake working
    # directory, which is two levels above results/<name>/.
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    return results_dir.parent.parent / path


def _training(results_dir: Path, name: str) -> str | None:
    history_path = results_dir / "fit" / f"{name}.history.tsv"
    if not history_path.is_file():
        return None
    history = pd.read_csv(history_path, sep="\t")
    best = history.loc[history["valid_loss"].idxmin()]
    figure = Figure(figsize=(10, 3.2))
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
    model_path = results_dir / "fit" / f"{name}.torch"
    if model_path.is_file():
        metadata = load_model(model_path).metadata
        if "device" in metadata:
            facts["device"] = metadata["device"]
        if "n_parameters" in metadata:
            facts["parameters"] = f"{metadata['n_parameters']:,}"
    items = "".join(f"<li>{html.escape(k)}: {html.escape(str(v))}</li>" for k, v in facts.items())
    return f"<ul>{items}</ul>\n{_png(figure)}"


def _performance(results_dir: Path, name: str) -> str | None:
    performance_path = results_dir / "evaluate" / f"{name}.performance.tsv"
    if not performance_path.is_file():
        return None
    parts = [_table(pd.read_csv(performance_path, sep="\t"))]
    regions_path = results_dir / "evaluate" / f"{name}.regions.tsv"
    if regions_path.is_file():
        regions = pd.read_csv(regions_path, sep="\t")
        observed, predicted = regions["observed_log_counts"], regions["predicted_log_counts"]
        figure = Figure(figsize=(9, 3.5))
        scatter, histogram = figure.subplots(1, 2)
        scatter.scatter(observed, predicted, s=6, alpha=0.6)
        low, high = np.nanmin([observed.min(), predicted.min()]), np.nanmax([observed.max(), predicted.max()])
        scatter.plot([low, high], [low, high], color="grey", linewidth=0.8)
        scatter.set(title=f"log counts, Pearson r = {observed.corr(predicted):.3f}",
                    xlabel="observed log(1 + counts)", ylabel="predicted log(1 + counts)")
        histogram.hist(regions["profile_jsd"].dropna(), bins=30, color="tab:purple")
        histogram.set(title="profile Jensen-Shannon distance", xlabel="JSD", ylabel="regions")
        figure.tight_layout()
        parts.append(_png(figure))
    return "\n".join(parts)


def _observed(signals: list[Path], chrom: str, start: int, end: int) -> np.ndarray:
    """Reads per base in [start, end) of each signal bigWig, shape (S, L)."""
    tracks = []
    for path in signals:
        with pyBigWig.open(str(path)) as bigwig:
            tracks.append(np.nan_to_num(np.asarray(bigwig.values(chrom, start, end), dtype=np.float64)))
    return np.stack(tracks)


def _logo(ax, scores: np.ndarray, sequence: str) -> None:
    """Draw one letter per base, its height the (signed) contribution."""
    font = FontProperties(family="DejaVu Sans", weight="bold")
    for x, (base, height) in enumerate(zip(sequence, scores)):
        if base not in BASE_COLORS or height == 0:
            continue
        path = TextPath((0, 0), base, size=1, prop=font)
        box = path.get_extents()
        # Negative contributions give an upside-down letter below the axis.
        transform = (Affine2D().translate(-box.x0, -box.y0)
                     .scale(0.9 / box.width, height / box.height).translate(x + 0.05, 0))
        ax.add_patch(PathPatch(transform.transform_path(path), color=BASE_COLORS[base], linewidth=0))
    extent = max(np.abs(scores).max(), 1e-6)
    ax.set_xlim(0, len(scores))
    ax.set_ylim(min(scores.min(), 0) - 0.05 * extent, max(scores.max(), 0) + 0.05 * extent)
    ax.axhline(0, color="black", linewidth=0.5)


def _examples(results_dir: Path, name: str) -> str | None:
    needed = [results_dir / "attribute" / f"{name}.{part}" for part in ("loci.tsv", "attr.npz", "ohe.npz")]
    needed += [results_dir / "predict" / f"{name}.{part}.npz" for part in ("profile", "counts")]
    needed.append(results_dir / "fit" / f"{name}.torch")
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

    metadata = load_model(needed[5]).metadata
    signals = [_resolve(path, results_dir) for path in metadata["signals"]]
    prediction_label = ("predicted, accessibility model (bias removed)" if metadata.get("kind") == "chrombpnet"
                        else "predicted")
    observed = {row.locus: _observed(signals, row.chrom, int(row.start), int(row.end))
                for row in matched.itertuples()}
    matched["observed_total"] = matched["locus"].map(lambda locus: observed[locus].sum())
    matched = matched.sort_values("observed_total", ascending=False).reset_index(drop=True)
    picks = {"highest": 0, "median": len(matched) // 2, "lowest": len(matched) - 1}

    parts = []
    for label, index in picks.items():
        row = matched.iloc[index]
        predicted = predicted_tracks(logits[[row["row"]]], log_counts[[row["row"]]])[0]
        figure = Figure(figsize=(10, 4.2))
        track_ax, logo_ax = figure.subplots(2, 1, gridspec_kw={"height_ratios": [2, 1]})
        positions = np.arange(row["start"], row["end"])
        stranded = len(predicted) % 2 == 0
        # Stranded pairs as in BPNet: plus drawn up, minus drawn down.
        for track in range(len(predicted)):
            sign = -1 if stranded and track % 2 else 1
            track_ax.plot(positions, sign * observed[row["locus"]][track], color="black", linewidth=0.7,
                          label="observed" if track == 0 else None)
            track_ax.plot(positions, sign * predicted[track], color="tab:red", linewidth=0.9,
                          label=prediction_label if track == 0 else None)
        track_ax.axhline(0, color="grey", linewidth=0.5)
        track_ax.set(title=f"{label} observed counts: {row['chrom']}:{row['start']:,}-{row['end']:,} "
                           f"(total {row['observed_total']:.0f})",
                     ylabel="reads (+ up, - down)" if stranded else "reads")
        track_ax.legend(fontsize=8, loc="upper right")
        scores = projected[row["locus"]]
        middle = len(scores) // 2
        window = slice(max(middle - LOGO_WIDTH // 2, 0), middle + LOGO_WIDTH // 2)
        one_hot = ohe[row["locus"], :, window]
        sequence = "".join(ALPHABET[i] if one_hot[i, x] else "N" for x, i in enumerate(one_hot.argmax(axis=0)))
        _logo(logo_ax, scores[window], sequence)
        logo_ax.set(ylabel="contribution", xlabel=f"central {LOGO_WIDTH} bp")
        figure.tight_layout()
        parts.append(f"<h3>{label.capitalize()}</h3>\n{_png(figure)}")
    return "\n".join(parts)


def _motifs(results_dir: Path) -> str | None:
    report = results_dir / "modisco" / "report"
    if not (report / "motifs.tsv").is_file():
        return None
    motifs = pd.read_csv(report / "motifs.tsv", sep="\t")
    rows = []
    for _, motif in motifs.iterrows():
        logo_path = report / "logos" / f"{motif['pattern']}.cwm.fwd.png"
        logo = _img(logo_path.read_bytes(), f"{motif['pattern']} CWM") if logo_path.is_file() else ""
        matches = [f"{html.escape(str(motif[f'match{i}']))} (q = {motif[f'qvalue{i}']:.2g})"
                   for i in range(3) if f"match{i}" in motif and pd.notna(motif[f"match{i}"])]
        rows.append({"pattern": html.escape(motif["pattern"]), "seqlets": motif["n_seqlets"],
                     "forward CWM": logo, "matches": "<br>".join(matches)})
    return _table(pd.DataFrame(rows), escape=False)


def _inputs(results_dir: Path) -> str | None:
    """Model inputs the pipeline made from raw files: counts, peaks, GC of the negatives."""
    folder = results_dir / "inputs"
    if not folder.is_dir():
        return None
    rows = []
    for path in sorted(folder.glob("*.bw")):
        with pyBigWig.open(str(path)) as bw:
            rows.append({"file": path.name, "what": "5'-end counts of the reads",
                         "size": f"{bw.header()['sumData']:,.0f} counts"})
    peaks = folder / "peaks.narrowPeak"
    if peaks.is_file():
        table = pd.read_csv(peaks, sep="\t", header=None, usecols=[1, 2])
        rows.append({"file": peaks.name, "what": "MACS3 peaks",
                     "size": f"{len(table):,} peaks, median width {int((table[2] - table[1]).median())} bp"})
    gc_path = folder / "negatives.gc.tsv"
    parts = []
    if gc_path.is_file():
        from scipy.stats import ks_2samp

        gc = pd.read_csv(gc_path, sep="\t")
        peaks_gc, negatives_gc = (gc.loc[gc["set"] == kind, "gc"].to_numpy() for kind in ("peaks", "negatives"))
        rows.append({"file": "negatives.bed", "what": "GC-matched background regions",
                     "size": f"{len(negatives_gc):,} regions"})
        test = ks_2samp(peaks_gc, negatives_gc)
        figure = Figure(figsize=(5, 3))
        ax = figure.subplots()
        bins = np.linspace(min(peaks_gc.min(), negatives_gc.min()), max(peaks_gc.max(), negatives_gc.max()), 31)
        for values, label, color in ((peaks_gc, "peaks", "#D62839"), (negatives_gc, "negatives", "#255C99")):
            ax.hist(values, bins=bins, density=True, histtype="step", lw=2, color=color,
                    label=f"{label} (n = {len(values)}, mean {values.mean():.3f})")
        ax.set_xlabel("GC fraction of the input window")
        ax.set_ylabel("density")
        ax.legend(frameon=False, fontsize=8)
        parts.append(f"<p>GC content of peaks and negatives: two-sample Kolmogorov-Smirnov statistic "
                     f"{test.statistic:.3f} (p = {test.pvalue:.2g}).</p>\n{_png(figure)}")
    if not rows:
        return None
    return "\n".join([_table(pd.DataFrame(rows)), *parts])


def _bias_qc(results_dir: Path) -> str | None:
    folder = results_dir / "bias_qc"
    if not (folder / "qc.json").is_file():
        return None
    qc = json.loads((folder / "qc.json").read_text())
    unchecked = ("" if qc.get("tf_motif_check", True) else
                 "<p class='missing'>No motif database was given (bias_qc_parameters.motifs): "
                 "the bias model's patterns were not checked for TF motifs.</p>")
    verdict = unchecked + ("<p class='missing'><b>Flagged:</b> " + "<br>".join(html.escape(r) for r in qc["reasons"])
               + (" (accepted by bias_qc_parameters.accept)" if qc.get("accept") else "") + "</p>"
               if qc["flagged"] else "<p><b>Passed:</b> every matched pattern of the bias model is an "
               "enzyme-bias motif, and its count Pearson r is within the official bounds.</p>")
    pearson = pd.DataFrame([{"regions": split, "n": v["n_regions"], "count Pearson r": round(v["pearson"], 3),
                             "required": f"> {qc['min_pearson'][split]}"}
                            for split, v in qc["count_pearson"].items()])
    rows = []
    for pattern in qc["patterns"]:
        logo_path = folder / "motifs" / "logos" / f"{pattern['pattern']}.cwm.fwd.png"
        rows.append({"pattern": html.escape(pattern["pattern"]), "seqlets": pattern["n_seqlets"],
                     "forward CWM": _img(logo_path.read_bytes(), pattern["pattern"]) if logo_path.is_file() else "",
                     "best match": html.escape(pattern["best_match"] or ""),
                     "q": "" if pattern["qvalue"] is None else f"{pattern['qvalue']:.2g}",
                     "kind": pattern["kind"] + (f" ({pattern['complexity']})" if pattern.get("complexity") else "")})
    patterns = _table(pd.DataFrame(rows), escape=False) if rows else "<p>No TF-MoDISco pattern.</p>"
    return f"{verdict}\n{_table(pearson)}\n<h3>Patterns of the bias model at peaks</h3>\n{patterns}"


def _bias_free(results_dir: Path) -> str | None:
    """The accessibility model's QC (`bpnet_core.bias_free_qc`): the verdict first, then the footprints."""
    folder = results_dir / "bias_free_qc"
    if not (folder / "qc.json").is_file():
        return None
    qc = json.loads((folder / "qc.json").read_text())
    verdict = ("<p><b>Bias-free:</b> no footprint of an enzyme motif in the accessibility model, and no "
               "enzyme motif among its TF-MoDISco patterns.</p>" if qc["bias_free"] else
               "<p class='failed'><b>NOT bias-free:</b> " + "<br>".join(html.escape(r) for r in qc["reasons"])
               + "<br>Contributions, motifs and marginalization of this run may show the enzyme's "
               "preference.</p>")
    fold = qc["mean_footprint_fold"]
    parts = [verdict, f"<p>Enzyme motif footprints, mean maximum in units of a flat profile: accessibility "
                      f"model {fold['accessibility']:.2f} (bound {qc['max_footprint_fold']}), full model "
                      f"{fold['full']:.2f}.</p>"]
    figure = folder / "footprints.png"
    if figure.is_file():
        parts.append(_img(figure.read_bytes(), "marginal footprints of the enzyme motifs"))
    return "\n".join(parts)


def bias_free_verdict(results_dir: str | os.PathLike) -> str | None:
    """A one-line banner for the top of a report: None when the accessibility model was not checked."""
    path = Path(results_dir) / "bias_free_qc" / "qc.json"
    if not path.is_file():
        return None
    qc = json.loads(path.read_text())
    if qc["bias_free"]:
        return "<p class='done'><b>Accessibility model: bias-free</b> (see Accessibility model QC).</p>"
    return ("<p class='failed'><b>Accessibility model: NOT bias-free.</b> Read its motifs and "
            "marginalization with care; see <a href='#bias_free_qc'>Accessibility model QC</a>.</p>")


def _marginalization(results_dir: Path) -> str | None:
    folder = results_dir / "marginalize"
    if not (folder / "summary.tsv").is_file():
        return None
    summary = pd.read_csv(folder / "summary.tsv", sep="\t")
    parts = [_table(summary)]
    bar = folder / "figures" / "delta_log_counts.png"
    if bar.is_file():
        parts.append(_img(bar.read_bytes(), "change in predicted log counts per motif"))
    # The figure names carry the row index of summary.tsv as marginalize wrote it.
    for index in summary["delta_log_counts"].nlargest(N_MARGINALIZE_FIGURES).index:
        path = folder / "figures" / figure_name(index, summary.loc[index, "motif"])
        if path.is_file():
            parts.append(f"<h3>{html.escape(summary.loc[index, 'motif'])}</h3>\n"
                         f"{_img(path.read_bytes(), summary.loc[index, 'motif'])}")
    return "\n".join(parts)


def _config(config_params: dict | None) -> str | None:
    if not config_params:
        return None
    return "\n".join(
        f"<details><summary>{html.escape(str(stage))}</summary>"
        f"<pre>{html.escape(json.dumps(params, indent=2, sort_keys=True, default=str))}</pre></details>"
        for stage, params in config_params.items())


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
        Stage -> effective parameters, shown as collapsible JSON.

    Returns
    -------
    list of str
        The ids of the sections written, in page order, among ``inputs``, ``training``,
        ``bias_qc``, ``bias_free_qc``, ``performance``, ``examples``, ``motifs``,
        ``marginalization`` and ``config``. A ChromBPNet run's page opens with the
        accessibility model's verdict. A section whose stage did not run is replaced by a note.
    """
    results_dir = Path(results_dir)
    sections = [
        ("inputs", "Inputs made from raw files", "every input was given as the models read it",
         lambda: _inputs(results_dir)),
        ("training", "Training", "the fit stage did not run", lambda: _training(results_dir, name)),
        ("bias_qc", "Bias model QC", "no ChromBPNet bias model in this run", lambda: _bias_qc(results_dir)),
        ("bias_free_qc", "Accessibility model QC", "no ChromBPNet accessibility model check in this run",
         lambda: _bias_free(results_dir)),
        ("performance", "Performance", "the evaluate stage did not run", lambda: _performance(results_dir, name)),
        ("examples", "Example loci", "the predict or attribute stage did not run",
         lambda: _examples(results_dir, name)),
        ("motifs", "Motifs", "the TF-MoDISco stage did not run", lambda: _motifs(results_dir)),
        ("marginalization", "Marginalization", "the marginalize stage did not run",
         lambda: _marginalization(results_dir)),
        ("config", "Effective configuration", "no configuration was given", lambda: _config(config_params)),
    ]
    written, body = [], []
    for section_id, title, note, build in sections:
        content = build()
        if content is None:
            body.append(f'<p class="missing">{title}: {note}.</p>')
            continue
        written.append(section_id)
        body.append(f'<h2 id="{section_id}">{title}</h2>\n{content}')
    page = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>BPNet report: {html.escape(name)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>BPNet report: {html.escape(name)}</h1>
{bias_free_verdict(results_dir) or ""}
{chr(10).join(body)}
</body>
</html>
"""
    with atomic_output(output_html) as tmp:
        tmp.write_text(page)
    return written
