"""One table and one page over many datasets: status, metrics, training time, motifs.

Built from the files each dataset's run left under ``results/<name>/``, so it
can be written at any time: finished datasets show their results, the
others show how far they got, and a failed stage shows its error.
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .io import atomic_output, write_tsv

N_MOTIFS = 3
# Stage -> a file that exists once it has finished, under results/<name>/.
_STAGE_FILES = {
    "bias_fit": "bias_fit/{name}.bias.torch",
    "fit": "fit/{name}.torch",
    "predict": "predict/{name}.counts.npz",
    "evaluate": "evaluate/{name}.performance.tsv",
    "attribute": "attribute/{name}.attr.npz",
    "modisco": "modisco/{name}.modisco.h5",
    "marginalize": "marginalize/summary.tsv",
}
_ERROR_LINE = re.compile(r"^\S+ \S+ (?:ERROR|CRITICAL) (.*)$")


def _first_error(log_path: Path) -> str | None:
    """The first error message a stage log recorded, if any."""
    with open(log_path, errors="replace") as handle:
        for line in handle:
            match = _ERROR_LINE.match(line.rstrip("\n"))
            if match:
                return match.group(1)
    return None


def dataset_status(results_dir: str | os.PathLike, name: str) -> tuple[str, str]:
    """``(status, detail)`` of one dataset from its result folder.

    Returns
    -------
    tuple of str
        ``"done"`` once its report is written; ``"failed"`` when a stage log
        recorded an error (detail: ``<log>: <message>``); else ``"not done"``
        (detail: the stages finished so far).
    """
    folder = Path(results_dir) / name
    if (folder / f"{name}.report.html").is_file():
        return "done", ""
    for log_path in sorted((folder / "logs").glob("*.log")):
        message = _first_error(log_path)
        if message is not None:
            return "failed", f"{log_path.stem}: {message}"
    finished = [stage for stage, pattern in _STAGE_FILES.items()
                if (folder / pattern.format(name=name)).is_file()]
    return "not done", ("finished: " + ", ".join(finished)) if finished else "not started"


def _training_seconds(folder: Path, name: str) -> float:
    """Wall seconds the dataset's models trained (bias and main), NaN when none did."""
    seconds = [pd.read_csv(path, sep="\t")["elapsed_s"].iloc[-1]
               for path in (folder / "bias_fit" / f"{name}.bias.history.tsv",
                            folder / "fit" / f"{name}.history.tsv") if path.is_file()]
    return float(sum(seconds)) if seconds else np.nan


def _top_motifs(folder: Path, n: int = N_MOTIFS) -> dict:
    """The `n` TF-MoDISco patterns with the most seqlets, each with its best database match."""
    path = folder / "modisco" / "report" / "motifs.tsv"
    if not path.is_file():
        return {}
    table = pd.read_csv(path, sep="\t").sort_values("n_seqlets", ascending=False, kind="stable")
    row = {}
    for i, (_, motif) in enumerate(table.head(n).iterrows(), start=1):
        row[f"motif{i}"] = motif["pattern"]
        row[f"motif{i}_seqlets"] = int(motif["n_seqlets"])
        row[f"motif{i}_match"] = motif.get("match0") if pd.notna(motif.get("match0")) else ""
        row[f"motif{i}_qvalue"] = motif.get("qvalue0", np.nan)
    return row


def summarize_datasets(datasets: dict[str, str], results_dir: str | os.PathLike = "results") -> pd.DataFrame:
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
        Columns ``dataset, status, detail, config``, the evaluation metrics of
        ``evaluate/<name>.performance.tsv``, ``bias_free`` (ChromBPNet: "yes" or
        "NO", the accessibility model's QC verdict), ``training_s`` (wall seconds of
        training, bias model included) and, for the top patterns,
        ``motif<i>``, ``motif<i>_seqlets``, ``motif<i>_match``, ``motif<i>_qvalue``.
        Missing results are empty.
    """
    rows = []
    for name, source in datasets.items():
        folder = Path(results_dir) / name
        status, detail = dataset_status(results_dir, name)
        row = {"dataset": name, "status": status, "detail": detail, "config": source}
        performance = folder / "evaluate" / f"{name}.performance.tsv"
        if performance.is_file():
            row.update(pd.read_csv(performance, sep="\t").iloc[0].to_dict())
        qc = folder / "bias_free_qc" / "qc.json"
        if qc.is_file():
            row["bias_free"] = "yes" if json.loads(qc.read_text())["bias_free"] else "NO"
        row["training_s"] = _training_seconds(folder, name)
        row.update(_top_motifs(folder))
        rows.append(row)
    return pd.DataFrame(rows)


_STYLE = """
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; }
.done { color: #1a7f37; } .failed { color: #cf222e; font-weight: bold; } .not-done { color: #9a6700; }
"""


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.4g}"
    return html.escape(str(value))


def summary_html(table: pd.DataFrame, title: str) -> str:
    """The summary table as a self-contained page; each dataset links to its report."""
    counts = table["status"].value_counts() if len(table) else pd.Series(dtype=int)
    tally = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("done", "failed", "not done"))
    if "bias_free" in table and (table["bias_free"] == "NO").any():
        tally += f"; {int((table['bias_free'] == 'NO').sum())} with an accessibility model that is NOT bias-free"
    header = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for _, row in table.iterrows():
        cells = []
        for column, value in row.items():
            text = _cell(value)
            if column == "dataset" and row["status"] == "done":
                text = f'<a href="../{text}/{text}.report.html">{text}</a>'
            elif column == "status":
                text = f'<span class="{row["status"].replace(" ", "-")}">{text}</span>'
            elif column == "bias_free" and value == "NO":
                text = f'<span class="failed">{text}</span>'
            cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
            f"<p>{len(table)} datasets: {tally}.</p>\n"
            f"<table><thead><tr>{header}</tr></thead><tbody>\n" + "\n".join(body)
            + "\n</tbody></table></body></html>\n")


def write_summary(datasets: dict[str, str], tsv: str | os.PathLike, html_path: str | os.PathLike,
                  results_dir: str | os.PathLike = "results") -> pd.DataFrame:
    """Write `summarize_datasets` as a TSV and an HTML page (atomically); return the table."""
    table = summarize_datasets(datasets, results_dir)
    write_tsv(tsv, table)
    with atomic_output(html_path) as tmp:
        tmp.write_text(summary_html(table, f"BPNet summary: {Path(tsv).stem}"))
    return table
