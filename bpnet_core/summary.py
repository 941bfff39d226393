"""One table and one page over many datasets: status, metrics, training time, motifs.

Built from the files each dataset's run left under ``results/<name>/``, so it
can be written at any time: finished datasets show their results, the
others show how far they got, and a failed stage shows its error. A finished
dataset whose results were made from another config than the one it names
now (its stage parameters, or input files newer than its report) is "stale".
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from . import layout, pages
from .chrombpnet import MIN_BIAS_INSERTIONS
from .config import RUNTIME_KEYS, fold_stages, parse_config, pipeline_stages, read_config, with_fold_stages
from .errors import InputError
from .io import atomic_output, meme_names, motif_label, write_text, write_tsv

N_MOTIFS = 3
# Stage -> a file (`bpnet_core.layout` key) that exists once it has finished.
_STAGE_FILES = {
    "bias_fit": "bias_model",
    "fit": "model",
    "predict": "counts",
    "evaluate": "performance",
    "attribute": "attr",
    "modisco": "modisco",
    "marginalize": "marginalize_summary",
}
_ERROR_LINE = re.compile(r"^\S+ \S+ (?:ERROR|CRITICAL) (.*)$")
# The stage parameters a run used, written by the report rule next to the report.
RUN_PARAMS = layout.relative("params")
# Stage keys naming input files, whose modification times are checked against the report.
_INPUT_KEYS = ("sequences", "signals", "controls", "loci", "negatives", "peaks", "motifs", "reads",
               "exclusion_lists", "model", "full_model", "bias_model", "accessibility_model")
N_CHANGES = 3  # changes named in a stale dataset's detail


def run_params(config_params: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Stage -> parameters as compared between runs: plain JSON data without `RUNTIME_KEYS`.

    Turning on ``verbose`` or moving to another device reruns nothing (see
    `bpnet_core.config.StageParams`), so it does not make results stale either.
    """
    return json.loads(json.dumps({stage: {k: v for k, v in params.items() if k not in RUNTIME_KEYS}
                                  for stage, params in config_params.items()}, sort_keys=True, default=str))


def write_run_params(path: str | os.PathLike, config_params: Mapping[str, Mapping[str, Any]]) -> None:
    """Record the stage parameters a run used (`run_params`) as JSON, for `dataset_status`."""
    write_text(path, json.dumps(run_params(config_params), indent=1, sort_keys=True) + "\n")


def current_params(source: str, results_dir: str | os.PathLike = layout.RESULTS) -> dict[str, dict[str, Any]]:
    """`run_params` of the config file `source` as the workflow would run it now.

    Relative paths in a config are relative to the workflow's working
    directory, the parent of `results_dir`; which models are given or trained
    depends on the files there, so the stages are built from there.

    Raises
    ------
    InputError
        When the config cannot be read or is invalid.
    """
    source_path = Path(source).resolve()
    with contextlib.chdir(Path(results_dir).resolve().parent):
        pipeline = parse_config(read_config(source_path), source=source)
        stages = with_fold_stages(pipeline_stages(pipeline, source=source), fold_stages(pipeline, source=source))
    return run_params({stage: step.to_params() for stage, step in stages.items()})


def _short(value: Any, width: int = 40) -> str:
    text = json.dumps(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def params_changes(recorded: Mapping[str, Mapping], current: Mapping[str, Mapping]) -> list[str]:
    """What differs between two `run_params`, one line per change, e.g. ``max_epochs 2 -> 3 (fit)``.

    A top-level key feeds many stages; each change is named once, with the stages it reaches.
    """
    changes: dict[str, list[str]] = {}
    for stage in [*current, *(stage for stage in recorded if stage not in current)]:
        if stage not in recorded:
            changes.setdefault("stage added", []).append(stage)
            continue
        if stage not in current:
            changes.setdefault("stage removed", []).append(stage)
            continue
        old, new = recorded[stage], current[stage]
        for key in [*new, *(key for key in old if key not in new)]:
            if old.get(key) != new.get(key):
                change = f"{key} {_short(old.get(key))} -> {_short(new.get(key))}"
                changes.setdefault(change, []).append(stage)
    return [f"{change}: {', '.join(stages)}" if change.startswith("stage ") else f"{change} ({', '.join(stages)})"
            for change, stages in changes.items()]


def _resolve(path: str, workdir: Path) -> Path:
    path = Path(path)
    return path if path.is_absolute() else workdir / path


def newer_inputs(current: Mapping[str, Mapping], than: float, workdir: Path) -> list[str]:
    """The input files named by the stages of `current` modified after time `than`."""
    newer = set()
    for params in current.values():
        for key in _INPUT_KEYS:
            paths = params.get(key)
            for path in [paths] if isinstance(paths, str) else (paths or []):
                resolved = _resolve(path, workdir)
                if resolved.is_file() and resolved.stat().st_mtime > than:
                    newer.add(path)
    return sorted(newer)


def _staleness(folder: Path, name: str, current: Mapping[str, Mapping]) -> str | None:
    """Why the results in `folder` are not those of the `current` config, or None."""
    record = layout.under(folder, "params", name)
    if record.is_file():
        changes = params_changes(json.loads(record.read_text()), current)
        if changes:
            more = f" (+{len(changes) - N_CHANGES} more)" if len(changes) > N_CHANGES else ""
            return f"config changed: {'; '.join(changes[:N_CHANGES])}{more}; rerun snakemake"
    newer = newer_inputs(current, layout.under(folder, "report", name).stat().st_mtime, folder.parent.parent)
    if newer:
        more = f" (+{len(newer) - N_CHANGES} more)" if len(newer) > N_CHANGES else ""
        return f"inputs newer than the report: {', '.join(newer[:N_CHANGES])}{more}; rerun snakemake"
    return None


def _first_error(log_path: Path) -> str | None:
    """The first error message a stage log recorded, if any."""
    with open(log_path, errors="replace") as handle:
        for line in handle:
            match = _ERROR_LINE.match(line.rstrip("\n"))
            if match:
                return match.group(1)
    return None


def dataset_status(results_dir: str | os.PathLike, name: str,
                   current: Mapping[str, Mapping] | None = None) -> tuple[str, str]:
    """``(status, detail)`` of one dataset from its result folder.

    Parameters
    ----------
    results_dir : path
        The folder holding ``<name>/``.
    name : str
    current : dict, optional
        `current_params` of the dataset's config now; without it a written
        report means ``"done"``.

    Returns
    -------
    tuple of str
        ``"done"`` once its report is written, unless ``"stale"``: the report's
        run recorded other stage parameters than `current`, or an input file
        is newer than the report (detail: what changed); ``"failed"`` when a
        stage log recorded an error (detail: ``<log>: <message>``); else
        ``"not done"`` (detail: the stages finished so far).
    """
    folder = Path(layout.dataset_dir(name, results_dir))
    if layout.under(folder, "report", name).is_file():
        stale = _staleness(folder, name, current) if current is not None else None
        return ("stale", stale) if stale else ("done", "")
    for log_path in sorted(layout.under(folder, "logs").glob("*.log")):
        message = _first_error(log_path)
        if message is not None:
            return "failed", f"{log_path.stem}: {message}"
    finished = [stage for stage, key in _STAGE_FILES.items() if layout.under(folder, key, name).is_file()]
    return "not done", ("finished: " + ", ".join(finished)) if finished else "not started"


def _training_seconds(folder: Path, name: str) -> float:
    """Wall seconds the dataset's models trained (bias, main and each fold's), NaN when none did."""
    histories = [layout.under(folder, "bias_history", name), layout.under(folder, "history", name),
                 *(layout.fold_under(folder, "history", name, fold) for fold in layout.existing_folds(folder))]
    seconds = [pd.read_csv(path, sep="\t")["elapsed_s"].iloc[-1] for path in histories if path.is_file()]
    return float(sum(seconds)) if seconds else np.nan


def _fold_metrics(folder: Path, name: str) -> dict:
    """A fold ensemble's held-out metrics: ``n_folds``, ``<metric>_mean`` and ``<metric>_sd`` over folds."""
    path = layout.under(folder, "fold_table", name)
    if not path.is_file():
        return {}
    table = pd.read_csv(path, sep="\t").set_index("fold")
    metrics = [column for column in table.columns if column not in ("test_chroms", "n_regions")]
    row = {"n_folds": int((~table.index.isin(("mean", "sd"))).sum())}
    for metric in metrics:
        row[f"{metric}_mean"] = table.loc["mean", metric]
        row[f"{metric}_sd"] = table.loc["sd", metric]
    return row


def _motif_names(params: Mapping[str, Mapping] | None, workdir: Path) -> dict[str, str]:
    """Motif ID -> TF name, from the report's motif database (see `bpnet_core.io.meme_names`)."""
    path = ((params or {}).get("modisco_report") or {}).get("motifs")
    if not path:
        return {}
    try:
        return meme_names(_resolve(path, workdir))
    except (OSError, UnicodeDecodeError):
        return {}


def _top_motifs(folder: Path, n: int = N_MOTIFS, names: Mapping[str, str] | None = None) -> dict:
    """The `n` TF-MoDISco patterns with the most seqlets, each with its best database match
    and that match's TF name (``motif<i>_match_name``, empty when the database has none)."""
    path = layout.under(folder, "modisco_report_table")
    if not path.is_file():
        return {}
    table = pd.read_csv(path, sep="\t").sort_values("n_seqlets", ascending=False, kind="stable")
    row = {}
    for i, (_, motif) in enumerate(table.head(n).iterrows(), start=1):
        row[f"motif{i}"] = motif["pattern"]
        row[f"motif{i}_seqlets"] = int(motif["n_seqlets"])
        row[f"motif{i}_match"] = motif.get("match0") if pd.notna(motif.get("match0")) else ""
        row[f"motif{i}_match_name"] = (names or {}).get(row[f"motif{i}_match"], "")
        row[f"motif{i}_qvalue"] = motif.get("qvalue0", np.nan)
    return row


def _hit_counts(folder: Path, name: str, row: Mapping) -> dict:
    """Fi-NeMo's hits: ``motif_hits`` (all patterns) and ``motif<i>_hits`` of each top pattern."""
    path = layout.under(folder, "hit_counts", name)
    if not path.is_file():
        return {}
    counts = pd.read_csv(path, sep="\t").set_index("pattern")["hits"]
    hits = {"motif_hits": int(counts.sum())}
    for i in range(1, N_MOTIFS + 1):
        if f"motif{i}" in row:
            hits[f"motif{i}_hits"] = int(counts.get(row[f"motif{i}"], 0))
    return hits


N_VARIANTS = 3  # strongest variants per dataset in the summary


def _top_variants(folder: Path, name: str, n: int = N_VARIANTS) -> dict:
    """The `n` strongest variants of a dataset's scores (``variant<i>``: id, ``variant<i>_logfc``,
    ``variant<i>_pval``); see `bpnet_core.variant_report.strongest`."""
    path = layout.under(folder, "variant_scores", name)
    if not path.is_file():
        return {}
    columns = ["id", "status", "logfc", "abs_logfc", "logfc_pval"]
    scores = pd.read_csv(path, sep="\t", usecols=lambda c: c in columns, dtype={"id": str})
    scored = scores[scores["status"].isin(["scored", "flipped"])]
    top = scored.sort_values(["logfc_pval", "abs_logfc"], ascending=[True, False], kind="stable").head(n)
    row = {}
    for i, variant in enumerate(top.itertuples(index=False), start=1):
        row[f"variant{i}"] = variant.id
        row[f"variant{i}_logfc"] = variant.logfc
        row[f"variant{i}_pval"] = variant.logfc_pval
    return row


def summarize_datasets(datasets: dict[str, str], results_dir: str | os.PathLike = layout.RESULTS) -> pd.DataFrame:
    """One row per dataset: status, evaluation metrics, training time, top motifs.

    Parameters
    ----------
    datasets : dict
        Dataset name -> the config file it came from.
    results_dir : path
        The folder holding ``<name>/`` result folders.

    Returns
    -------
    pandas.DataFrame
        Columns ``dataset, status, detail, config, pipeline`` (BPNet or
        ChromBPNet; see `dataset_status` for the status), the evaluation metrics of
        ``evaluate/<name>.performance.tsv`` (a fold ensemble: the mean over folds of the held-out
        metrics, and ``n_folds``, ``<metric>_mean``, ``<metric>_sd`` from ``evaluate/<name>.folds.tsv``), ``bias_free`` (ChromBPNet: "yes" or
        "NO", the accessibility model's QC verdict), ``bias_qc`` (ChromBPNet: "passed",
        "FLAGGED" or "FLAGGED (accepted)", the bias model's QC verdict), ``bias_insertions`` (ChromBPNet:
        the insertions the bias model learnt from; below
        `bpnet_core.chrombpnet.MIN_BIAS_INSERTIONS` the data are shallow), ``training_s`` (wall seconds of
        training, bias model included) and, for the top patterns,
        ``motif<i>``, ``motif<i>_seqlets``, ``motif<i>_match``, ``motif<i>_match_name``,
        ``motif<i>_qvalue``, ``motif<i>_hits`` (Fi-NeMo's hits of the pattern; ``motif_hits``: of all
        patterns), and for the strongest variants (smallest ``logfc_pval``)
        ``variant<i>``, ``variant<i>_logfc``, ``variant<i>_pval``. Missing results are empty.
    """
    rows = []
    for name, source in datasets.items():
        folder = Path(layout.dataset_dir(name, results_dir))
        current, problem = _current(source, results_dir)
        status, detail = dataset_status(results_dir, name, current)
        if problem and status == "done":
            detail = f"not compared with the config: {problem}"
        row = {"dataset": name, "status": status, "detail": detail, "config": source,
               "pipeline": _pipeline(folder, current)}
        performance = layout.under(folder, "performance", name)
        if performance.is_file():
            row.update(pd.read_csv(performance, sep="\t").iloc[0].to_dict())
        row.update(_fold_metrics(folder, name))
        qc = layout.under(folder, "bias_free_qc_json")
        if qc.is_file():
            row["bias_free"] = "yes" if json.loads(qc.read_text())["bias_free"] else "NO"
        bias_qc = layout.under(folder, "bias_qc_json")
        if bias_qc.is_file():
            verdict = json.loads(bias_qc.read_text())
            row["bias_qc"] = ("passed" if not verdict["flagged"] else
                              "FLAGGED (accepted)" if verdict.get("accept") else "FLAGGED")
            row["bias_insertions"] = verdict.get("background_insertions")
        row["training_s"] = _training_seconds(folder, name)
        row.update(_top_motifs(folder, names=_motif_names(current or _recorded(folder, name),
                                                          Path(results_dir).parent)))
        row.update(_hit_counts(folder, name, row))
        row.update(_top_variants(folder, name))
        rows.append(row)
    return pd.DataFrame(rows)


def _current(source: str, results_dir: str | os.PathLike) -> tuple[dict | None, str | None]:
    """(`current_params` of `source`, None), or (None, why it could not be built)."""
    try:
        return current_params(source, results_dir), None
    except InputError as err:
        return None, str(err)


def _recorded(folder: Path, name: str) -> dict | None:
    path = layout.under(folder, "params", name)
    return json.loads(path.read_text()) if path.is_file() else None


def _pipeline(folder: Path, current: Mapping | None) -> str:
    """"ChromBPNet" or "BPNet": from the config when it loads, else from what the run left."""
    if current is None:
        current = _recorded(folder, folder.name)
    if current is not None:
        return "ChromBPNet" if "bias_fit" in current else "BPNet"
    if any(layout.under(folder, part).is_dir() for part in ("bias_fit", "bias_qc", "bias_free_qc")):
        return "ChromBPNet"
    return "BPNet" if folder.is_dir() else ""


def summary_title(table: pd.DataFrame, batch: str) -> str:
    """``"<pipelines> summary: <batch>"``, the pipelines being those of the table's datasets."""
    kinds = [kind for kind in ("BPNet", "ChromBPNet")
             if "pipeline" in table and (table["pipeline"] == kind).any()]
    return f"{' / '.join(kinds or ['BPNet', 'ChromBPNet'])} summary: {batch}"


def summary_html(table: pd.DataFrame, title: str) -> str:
    """The summary table as a self-contained page; each dataset links to its report.

    A motif match shows as ``RSC3 (MA0374.2)`` where its ``_match_name`` column has a TF name.
    """
    counts = table["status"].value_counts() if len(table) else pd.Series(dtype=int)
    # "stale" only when there is one: it is news, and the usual line stays as it was.
    statuses = ("done", "stale", "failed", "not done") if counts.get("stale", 0) else ("done", "failed", "not done")
    tally = ", ".join(f"{counts.get(s, 0)} {s}" for s in statuses)
    if "bias_free" in table and (table["bias_free"] == "NO").any():
        tally += f"; {int((table['bias_free'] == 'NO').sum())} with an accessibility model that is NOT bias-free"
    flagged = table["bias_qc"].astype(str).str.startswith("FLAGGED") if "bias_qc" in table else None
    if flagged is not None and flagged.any():
        tally += f"; {int(flagged.sum())} with a bias model that its QC flagged (bias_qc)"
    shallow = (pd.to_numeric(table["bias_insertions"], errors="coerce") < MIN_BIAS_INSERTIONS
               if "bias_insertions" in table else pd.Series(False, index=table.index))
    if shallow.any():
        tally += f"; {int(shallow.sum())} with a bias model trained on shallow data (bias_insertions)"
    columns = [c for c in table.columns if not c.endswith("_match_name")]
    rows = []
    for index, row in table.iterrows():
        cells = {}
        for column, value in row[columns].items():
            name = row.get(f"{column}_name")
            if isinstance(value, str) and value and isinstance(name, str) and name:
                value = motif_label(value, {value: name})
            text = pages.cell(value)
            if column == "dataset" and row["status"] in ("done", "stale"):
                value = pages.Html(f'<a href="{layout.report_link(text)}">{text}</a>')
            elif column == "status":
                value = pages.Html(f'<span class="{row["status"].replace(" ", "-")}">{text}</span>')
            elif ((column == "bias_free" and value == "NO") or (column == "bias_insertions" and shallow[index])
                  or (column == "bias_qc" and flagged[index])):
                value = pages.Html(f'<span class="failed">{text}</span>')
            cells[column] = value
        rows.append(cells)
    return pages.page(title, f"<p>{len(table)} datasets: {html.escape(tally)}.</p>\n{pages.table(rows, columns)}")


def write_summary(datasets: dict[str, str], tsv: str | os.PathLike, html_path: str | os.PathLike,
                  results_dir: str | os.PathLike = layout.RESULTS) -> pd.DataFrame:
    """Write `summarize_datasets` as a TSV and an HTML page (atomically); return the table."""
    table = summarize_datasets(datasets, results_dir)
    write_tsv(tsv, table)
    with atomic_output(html_path) as tmp:
        tmp.write_text(summary_html(table, summary_title(table, Path(tsv).stem)))
    return table
