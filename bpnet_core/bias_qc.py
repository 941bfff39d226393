"""Quality control of a ChromBPNet bias model.

A bias model that learned TF motifs (because the background regions it saw
held some real accessibility) explains away TF signal in the accessibility
model, and every downstream result quietly degrades. The official pipeline
checks two things, both done here:

- the motifs of the bias model: its profile contributions at peaks go
  through TF-MoDISco, and each pattern's best significant database match
  must be an enzyme-bias motif (Tn5, DNase I), not a TF motif;
- its count predictions: Pearson r of predicted and observed log counts
  must be > 0 on background regions and > -0.3 on peaks (below that it
  has learned something anti-correlated with accessibility, e.g. AT bias).

and one more, for the opposite failure, a bias model that has learnt
accessibility: the share of the peaks' enrichment over background (mean
log counts) that it predicts must stay below `MAX_ENRICHMENT_SHARE`.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import pages
from .attribute import attribute_model
from .chrombpnet import MIN_BIAS_INSERTIONS, depth_warning
from .config import AttributeConfig, BiasQCConfig, as_step_config
from .data import load_windows
from .io import ALPHABET, write_text
from .metrics import performance
from .models import load_model, set_compute
from .modisco import report_motifs
from .predict import predict_windows
from .runtime import select_device

log = logging.getLogger(__name__)

#: Names of enzyme-bias motifs, as in chrombpnet's motifs.meme.txt
#: (TN5_1..8, DNASE_1..6); every other database motif counts as a TF motif.
BIAS_MOTIF_NAME = re.compile(r"^(tn5|dnase)", re.IGNORECASE)
#: The official pipeline's bounds on the bias model's count Pearson r.
MIN_PEARSON = {"negatives": 0.0, "peaks": -0.3}
#: The most of the peaks' enrichment over background regions (difference of
#: mean log counts, predicted / observed) that a bias model may predict. The
#: enzyme's preference is the same in and out of peaks, so a bias model
#: predicts little of it; one that predicts much has learnt accessibility.
#: Measured on real yeast ATAC-seq (validation chromosomes): bias models
#: trained on background regions 0.07-0.12 (full depth, beta 0.5 and 2.0;
#: half depth), one trained on peaks and background 0.43; on the simulated
#: ATAC demo 0.00. The count Pearson r in peaks does not separate them there
#: (0.52, 0.51, 0.58 against 0.535 for the leaky model): poly(dA:dT), which
#: the bias model learns from background too, predicts yeast peak strength.
MAX_ENRICHMENT_SHARE = 0.25
#: How many times smaller an enzyme match's p-value must be than the best
#: TF match's for a pattern to count as the enzyme's (see classify_patterns).
SPECIFICITY = 10.0
#: Column orders tried per pattern, and the log10 p-value gain over them that
#: makes a match specific (see pattern_matches). Measured: on real yeast
#: ATAC-seq, the 20 GC-rich and A/T-rich smears of both models gained -3.1
#: to +1.0 on their TN5_1 matches (p 1e-11 to 1e-29), the bias model's Tn5
#: patterns 4.6 to 8.7; on the simulated ATAC demo, the bias model's Tn5
#: patterns 3.9 and 4.3, the accessibility model's AP1, CEBP and GATA 3.7 to
#: 4.0. 2 lies between.
N_PERMUTATIONS = 5
MIN_ORDER_GAIN = 2.0
#: Low-complexity pattern cores (see low_complexity).
LOW_COMPLEXITY_FRACTION = 0.8
MIN_LOW_COMPLEXITY_LENGTH = 10


def _as_config(config: BiasQCConfig | Mapping[str, Any]) -> BiasQCConfig:
    return as_step_config(BiasQCConfig, config)


def attribute_bias_model(config: BiasQCConfig | Mapping[str, Any], ohe_path: str | os.PathLike,
                         attr_path: str | os.PathLike) -> dict[str, Any]:
    """Profile DeepLIFT/SHAP contributions of the bias model at up to `n_loci` peaks.

    Peaks on every chromosome are used, as the official pipeline does: TF
    motifs that leaked into the bias model show up where TFs bind. Writes
    the (N, 4, in_window) npz pair that `bpnet_core.modisco.discover_motifs` reads.
    """
    config = _as_config(config)
    step = AttributeConfig(
        model=config.model, sequences=config.sequences, loci=config.loci, chroms=None,
        in_window=config.in_window, out_window=config.out_window, batch_size=config.batch_size,
        output="profile", n_shuffles=config.n_shuffles, random_state=config.random_state,
        device=config.device, fast_path=config.fast_path, verbose=config.verbose)
    return attribute_model(step, ohe_path, attr_path, max_loci=config.n_loci)


def count_pearson(config: BiasQCConfig) -> dict[str, dict[str, float]]:
    """Count Pearson r of the bias model on the config's `chroms`.

    Returns
    -------
    dict
        ``negatives`` and ``peaks`` -> {``pearson``, ``n_regions``,
        ``mean_predicted``, ``mean_observed``}: r and the means of predicted
        and observed log(1 + counts) over the split's regions.
    """
    device = select_device(config.device)
    model = set_compute(load_model(config.model, key="bias_model", device=device), config.fast_path)
    result = {}
    for split, loci, key in (("negatives", config.negatives, "negatives"), ("peaks", config.loci, "loci")):
        windows = load_windows(loci, config.sequences, signals=config.signals, chroms=config.chroms,
                               in_window=config.in_window, out_window=config.out_window, key=key)
        logits, log_counts = predict_windows(model, windows, config.batch_size, device)
        summary, _ = performance(logits, log_counts, windows.y.numpy())
        result[split] = {"pearson": float(summary["count_pearson"]), "n_regions": len(windows),
                         "mean_predicted": float(np.mean(log_counts)),
                         "mean_observed": float(np.log1p(windows.y.numpy().sum(axis=(1, 2))).mean())}
    return result


def enrichment_share(pearson: Mapping[str, Mapping[str, float]]) -> dict[str, float | None]:
    """How much of the peaks' enrichment over background the bias model predicts.

    Parameters
    ----------
    pearson : mapping
        `count_pearson`'s result.

    Returns
    -------
    dict
        ``predicted`` and ``observed``: mean log(1 + counts) in peaks minus
        in background regions; ``share`` = predicted / observed (None when
        the peaks are not enriched, i.e. observed <= 0); ``max_share``,
        `MAX_ENRICHMENT_SHARE`.
    """
    predicted = pearson["peaks"]["mean_predicted"] - pearson["negatives"]["mean_predicted"]
    observed = pearson["peaks"]["mean_observed"] - pearson["negatives"]["mean_observed"]
    share = predicted / observed if observed > 0 else None
    return {"predicted": predicted, "observed": observed, "share": share, "max_share": MAX_ENRICHMENT_SHARE}


def count_verdict(pearson: Mapping[str, Mapping[str, float]], chroms: list[str]
                  ) -> tuple[list[str], dict[str, float | None]]:
    """What is wrong with a bias model's count predictions, and its `enrichment_share`.

    Parameters
    ----------
    pearson : mapping
        `count_pearson`'s result.
    chroms : list of str
        The chromosomes it was measured on, for the messages.

    Returns
    -------
    (list of str, dict)
        One reason per failed check: r not above `MIN_PEARSON` (NaN fails
        too), or a share of the peaks' enrichment above
        `MAX_ENRICHMENT_SHARE`; and the `enrichment_share`.
    """
    reasons = []
    for split, bound in MIN_PEARSON.items():
        r = pearson[split]["pearson"]
        if not r > bound:
            reasons.append(f"count Pearson r on {split} ({','.join(chroms)}) is {r:.3f}, not above {bound}")
    enrichment = enrichment_share(pearson)
    if enrichment["share"] is not None and enrichment["share"] > MAX_ENRICHMENT_SHARE:
        reasons.append(f"it predicts {enrichment['share']:.0%} of the peaks' enrichment over background "
                       f"({enrichment['predicted']:+.2f} of {enrichment['observed']:+.2f} mean log counts, "
                       f"{','.join(chroms)}; at most {MAX_ENRICHMENT_SHARE:.0%} allowed): it has learnt "
                       "accessibility, not only the enzyme's preference")
    return reasons, enrichment


def format_share(enrichment: Mapping[str, Any]) -> str:
    """`enrichment_share`'s share as a percentage, or "n/a" without enriched peaks."""
    return "n/a" if enrichment["share"] is None else f"{enrichment['share']:.0%}"


def enrichment_text(enrichment: Mapping[str, Any]) -> str:
    """One sentence for the QC pages: the share of the peaks' enrichment the bias model predicts."""
    return (f"Enrichment of peaks over background regions that the bias model predicts: "
            f"{format_share(enrichment)} ({enrichment['predicted']:+.2f} of {enrichment['observed']:+.2f} "
            f"mean log counts; at most {enrichment['max_share']:.0%}: more means it has learnt accessibility).")


def low_complexity(consensus: str) -> str | None:
    """"A/T-rich" or "G/C-rich" for a low-complexity pattern core, else None.

    A core of at least `MIN_LOW_COMPLEXITY_LENGTH` bp whose consensus is at
    least `LOW_COMPLEXITY_FRACTION` A/T (a poly(dA:dT) tract) or G/C. Such
    patterns match long, low-information motifs (TN5_1 is 30 bp of nearly
    uniform bases) with tiny p-values, and say nothing about the enzyme: in
    yeast, poly(dA:dT) excludes nucleosomes, an accessibility signal.
    """
    if len(consensus) < MIN_LOW_COMPLEXITY_LENGTH:
        return None
    at = sum(base in "AT" for base in consensus) / len(consensus)
    if at >= LOW_COMPLEXITY_FRACTION:
        return "A/T-rich"
    if 1 - at >= LOW_COMPLEXITY_FRACTION:
        return "G/C-rich"
    return None


def pattern_matches(modisco_h5: str | os.PathLike, motifs: str | os.PathLike,
                    random_state: int = 0) -> list[dict[str, Any]]:
    """Each TF-MoDISco pattern's best enzyme-bias match and best TF match, and how much order matters.

    Each pattern's core (as the report trims it) is matched against the
    database as it is and with its columns in `N_PERMUTATIONS` random
    orders. A match that is about as good after the columns are permuted
    comes from the pattern's base composition, not from a motif: 30 bp of
    GC-rich or A/T-rich contributions match the 30 bp, 2.8-bit TN5_1 at
    p < 1e-15 in either order.

    Returns
    -------
    list of dict
        Per pattern: ``pattern``, ``n_seqlets``, ``consensus`` (of the
        core), ``complexity`` (`low_complexity`), and for ``enzyme`` (TN5*,
        DNASE*) and ``tf`` (every other motif): ``<kind>_match``,
        ``<kind>_pvalue``, ``<kind>_qvalue`` of the most significant motif
        of that kind, and ``<kind>_order_gain``: log10 of the median p-value
        of that match over the permuted cores divided by its p-value (None
        where the database has no motif of that kind); ``tf_complexity``,
        `low_complexity` of the best TF motif's consensus.
    """
    from .io import read_meme
    from .modisco import _core, _match_patterns, _read_patterns, tomtom_pvalues

    patterns = _read_patterns(modisco_h5)
    database = read_meme(motifs, key="motifs")
    if not patterns:
        return []
    names = list(database)
    enzyme = np.array([bool(BIAS_MOTIF_NAME.match(name)) for name in names])
    pvalues, qvalues = _match_patterns(patterns, database)
    rng = np.random.default_rng(random_state)
    rows = []
    for pattern, p, q in zip(patterns, pvalues, qvalues):
        start, end = _core(pattern.cwm)
        core = pattern.ppm[start:end]
        consensus = "".join(ALPHABET[i] for i in core.argmax(axis=1))
        permuted = tomtom_pvalues([core[rng.permutation(len(core))].T for _ in range(N_PERMUTATIONS)],
                                  database)
        row = {"pattern": pattern.name, "n_seqlets": pattern.n_seqlets, "consensus": consensus,
               "complexity": low_complexity(consensus)}
        for kind, of_kind in (("enzyme", enzyme), ("tf", ~enzyme)):
            best = int(np.argmin(np.where(of_kind, p, np.inf))) if of_kind.any() else None
            gain = None if best is None else float(np.log10(np.median(permuted[:, best]) / max(p[best], 1e-300)))
            row.update({f"{kind}_match": None if best is None else names[best],
                        f"{kind}_pvalue": None if best is None else float(p[best]),
                        f"{kind}_qvalue": None if best is None else float(q[best]),
                        f"{kind}_order_gain": gain})
        # A TF motif that is itself an A/T or G/C run (SFP1's A5T5, MA0378.2)
        # says no more about a pattern than a low-complexity core does.
        tf = row["tf_match"]
        row["tf_complexity"] = None if tf is None else low_complexity(
            "".join(ALPHABET[i] for i in database[tf].argmax(axis=1)))
        rows.append(row)
    return rows


def classify_patterns(matches: list[dict[str, Any]], max_qvalue: float) -> list[dict[str, Any]]:
    """Each pattern of `pattern_matches` as "bias", "TF", "ambiguous", "composition", "low-complexity" or "unmatched".

    A match is *specific* when it is significant (q < `max_qvalue`) and
    its p-value is at least ``10 ** MIN_ORDER_GAIN`` times smaller than
    with the pattern's columns permuted: the motif's order, not the
    pattern's base composition, makes it.

    - "low-complexity": an A/T- or G/C-rich core (`low_complexity`), whatever
      it matches, or a specific TF match whose motif is itself such a run
      (``tf_complexity``, e.g. SFP1's A5T5);
    - "bias": a specific enzyme match, `SPECIFICITY` times more significant
      than any specific TF match;
    - "TF": a specific TF match at least as significant as any specific
      enzyme match;
    - "ambiguous": specific matches of both kinds, the enzyme's not
      `SPECIFICITY` times better;
    - "composition": significant matches, none specific;
    - "unmatched": no significant match.

    The returned dicts add ``kind``, ``best_match`` and ``qvalue`` (of the
    match that decided it) to the input's keys.
    """
    def significant(row, kind):
        q = row.get(f"{kind}_qvalue")
        return q is not None and q < max_qvalue

    def specific(row, kind):
        gain = row.get(f"{kind}_order_gain")
        return significant(row, kind) and gain is not None and gain >= MIN_ORDER_GAIN

    classified = []
    for row in matches:
        best = None  # the match that decides the kind; the most significant one where none does
        enzyme, tf = specific(row, "enzyme"), specific(row, "tf")
        enzyme_p = row.get("enzyme_pvalue") if enzyme else 1.0
        tf_p = row.get("tf_pvalue") if tf else 1.0
        if row.get("complexity"):
            kind = "low-complexity"
        elif enzyme and enzyme_p * SPECIFICITY <= tf_p:
            kind, best = "bias", "enzyme"
        elif tf and tf_p <= enzyme_p:
            kind, best = ("low-complexity" if row.get("tf_complexity") else "TF"), "tf"
        elif enzyme:
            kind, best = "ambiguous", "enzyme"
        elif significant(row, "enzyme") or significant(row, "tf"):
            kind = "composition"
        else:
            kind = "unmatched"
        if best is None:
            ranked = [k for k in ("enzyme", "tf") if significant(row, k)]
            best = min(ranked, key=lambda k: row[f"{k}_pvalue"]) if ranked else None
        classified.append({**row, "kind": kind,
                           "best_match": row.get(f"{best}_match") if best else None,
                           "qvalue": row.get(f"{best}_qvalue") if best else None})
    return classified


def bias_warnings(patterns: list[dict[str, Any]], motifs: str | None, insertions: int | None,
                  n_regions: int) -> list[str]:
    """What the bias QC says without flagging: shallow data, and no pattern that is the enzyme's.

    Parameters
    ----------
    patterns : list of dict
        `classify_patterns` output.
    motifs : str or None
        The motif database (None: the patterns were not matched).
    insertions, n_regions : int
        What the bias model learnt from (``background_insertions``; None
        for models of older versions) and in how many regions.
    """
    warnings = []
    shallow = depth_warning(insertions, n_regions) if insertions is not None else None
    if shallow:
        warnings.append(shallow)
    if motifs is not None and not any(p["kind"] == "bias" for p in patterns):
        # Seen on the real yeast data at half depth: only poly(dA:dT) and GC runs.
        kinds = ", ".join(sorted({p["kind"] for p in patterns})) or "none"
        warnings.append(f"no TF-MoDISco pattern of the bias model is an enzyme motif of {motifs} "
                        f"({len(patterns)} pattern(s): {kinds}): it may not have learnt the enzyme's "
                        "preference, and the accessibility model may keep it")
    return warnings


def qc_bias_model(config: BiasQCConfig | Mapping[str, Any], modisco_h5: str | os.PathLike,
                  output_folder: str | os.PathLike) -> dict[str, Any]:
    """Judge a bias model; write ``qc.json``, ``qc.html`` and the motif report.

    Parameters
    ----------
    config : BiasQCConfig or mapping
    modisco_h5 : str or PathLike
        TF-MoDISco results of the bias model's attributions at peaks.
    output_folder : str or PathLike
        Gets ``qc.json`` (the verdict below), ``qc.html`` (the same as a
        page) and ``motifs/`` (`bpnet_core.modisco.report_motifs` against
        the config's `motifs`).

    Returns
    -------
    dict
        ``flagged`` (bool), ``reasons`` (list of str), ``tf_motif_check``
        (False when there was no motif database), ``patterns`` (see
        `classify_patterns`), ``count_pearson`` {negatives, peaks} with the
        number of regions, ``min_pearson``, ``motifs``, ``accept``,
        ``background_insertions`` (what the model learnt from; None for
        models of older versions) and ``warnings``: shallow data (see
        `bpnet_core.chrombpnet.depth_warning`), or no pattern that is an
        enzyme motif (the model may not have learnt the enzyme's preference).
    """
    config = _as_config(config)
    folder = Path(output_folder)
    if config.motifs is None:
        log.warning("no motif database (modisco_report_parameters.motifs or bias_qc_parameters.motifs): "
                    "the bias model's patterns cannot be checked for TF motifs")
    report_motifs(modisco_h5, folder / "motifs", config.motifs)
    patterns = (classify_patterns(pattern_matches(modisco_h5, config.motifs), config.max_qvalue)
                if config.motifs is not None else [])
    pearson = count_pearson(config)
    trained = load_model(config.model, key="bias_model").metadata
    insertions = trained.get("background_insertions")  # absent in models of older versions
    warnings = bias_warnings(patterns, config.motifs, insertions, trained.get("n_train", 0))

    reasons = [f"pattern {p['pattern']} ({p['n_seqlets']} seqlets) matches the TF motif {p['best_match']} "
               f"(q = {p['qvalue']:.2g})" for p in patterns if p["kind"] == "TF"]
    count_problems, enrichment = count_verdict(pearson, config.chroms)
    reasons += count_problems
    # Without a database the TF-motif check cannot run: say so, do not pass it silently.
    qc = {"flagged": bool(reasons), "reasons": reasons, "tf_motif_check": config.motifs is not None,
          "patterns": patterns, "count_pearson": pearson, "enrichment": enrichment,
          "min_pearson": MIN_PEARSON, "max_qvalue": config.max_qvalue, "motifs": config.motifs,
          "accept": config.accept, "model": config.model, "background_insertions": insertions,
          "min_background_insertions": MIN_BIAS_INSERTIONS, "warnings": warnings}
    write_text(folder / "qc.json", json.dumps(qc, indent=2) + "\n")
    write_text(folder / "qc.html", _qc_html(qc))
    level = logging.WARNING if reasons else logging.INFO
    log.log(level, "bias QC %s: %d pattern(s) (%s); count r %.3f on background, %.3f on peaks; "
            "predicts %s of the peaks' enrichment", "FLAGGED" if reasons else "passed", len(patterns),
            ", ".join(f"{p['pattern']}={p['kind']}" for p in patterns) or "none",
            pearson["negatives"]["pearson"], pearson["peaks"]["pearson"], format_share(enrichment))
    return qc


def _qc_html(qc: dict[str, Any]) -> str:
    unchecked = ("" if qc["tf_motif_check"] else "<p class='flag'>No motif database was given "
                 "(<code>bias_qc_parameters.motifs</code>): the patterns were not checked for TF motifs.</p>")
    verdict = unchecked + ("<p class='flag'><b>Flagged.</b> " + pages.lines(qc["reasons"])
               + "</p><p>Lower <code>beta</code> and retrain, or set <code>bias_qc_parameters.accept</code>.</p>"
               if qc["flagged"] else "<p class='pass'><b>Passed.</b></p>")
    patterns = pages.table(
        [{"pattern": p["pattern"], "seqlets": p["n_seqlets"], "best match": p["best_match"] or "",
          "q": "" if p["qvalue"] is None else format(p["qvalue"], ".2g"),
          "kind": p["kind"] + (f" ({p['complexity']})" if p.get("complexity") else ""),
          "core": pages.Html(f"<code>{html.escape(p.get('consensus') or '')}</code>")} for p in qc["patterns"]],
        ["pattern", "seqlets", "best match", "q", "kind", "core"])
    pearson = pages.table(
        [{"regions": split, "n": v["n_regions"], "r": f"{v['pearson']:.3f}",
          "required": f"> {qc['min_pearson'][split]}"} for split, v in qc["count_pearson"].items()],
        ["regions", "n", "r", "required"])
    verdict += "".join(f"<p class='flag'><b>Warning:</b> {html.escape(w)}.</p>" for w in qc.get("warnings", []))
    enrichment = f"<p>{html.escape(enrichment_text(qc['enrichment']))}</p>" if qc.get("enrichment") else ""
    body = f"""<p>{html.escape(str(qc['model']))}</p>{verdict}
<h2>Counts (validation chromosomes)</h2>
{pearson}
{enrichment}
<h2>TF-MoDISco patterns of the bias model at peaks</h2>
<p>Matches in {html.escape(str(qc['motifs']))} with q &lt; {qc['max_qvalue']}: enzyme-bias motifs
(TN5*, DNASE*) are expected; a TF motif as the best match flags the model. A match counts only when
the pattern's column order makes it (p-value {10 ** MIN_ORDER_GAIN:g} times smaller than with the columns
permuted; otherwise "composition"); a pattern is the enzyme's ("bias") when that match is
{SPECIFICITY:g} times more significant than its best TF match ("ambiguous" otherwise); A/T- or G/C-rich
cores are "low-complexity", whatever they match.
Logos: <a href="motifs/report.html">motif report</a>.</p>
{patterns}"""
    return pages.page("Bias model QC", body)
