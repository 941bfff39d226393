"""Pages label things right: titles by pipeline, sections that apply, coordinates,
TF names of motif matches, the bias model's curves, and stale results in the summary."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from bpnet_core import report
from bpnet_core.io import meme_names, motif_label, read_meme
from bpnet_core.models import BPNet, ChromBPNet, load_model, save_model
from bpnet_core.predict import predicted_tracks
from bpnet_core.report import locus_figure, write_dataset_report
from bpnet_core.summary import (
    RUN_PARAMS,
    current_params,
    dataset_status,
    params_changes,
    run_params,
    summarize_datasets,
    summary_html,
    summary_title,
    write_summary,
)
from conftest import write_json

JASPAR_LIKE = """MEME version 4

ALPHABET= ACGT

MOTIF MA0374.2 RSC3
letter-probability matrix: alength= 4 w= 2 nsites= 20 E= 0
 0.7 0.1 0.1 0.1
 0.1 0.1 0.1 0.7

MOTIF AP1_like
letter-probability matrix: alength= 4 w= 2 nsites= 20 E= 0
 0.1 0.1 0.7 0.1
 0.1 0.7 0.1 0.1
"""


@pytest.fixture(scope="module")
def tiny_results(pipeline_run) -> Path:
    return pipeline_run[0] / "results" / "tiny"


def _page(results: Path, tmp_path: Path, config_params: dict | None = None) -> tuple[list[str], str]:
    html_path = tmp_path / "page.html"
    sections = write_dataset_report(results, results.name, html_path, config_params)
    return sections, html_path.read_text()


# --------------------------------------------------------------------------
# Motif names


def test_meme_names_keep_the_id_as_key_and_give_the_tf_name(tmp_path):
    path = tmp_path / "jaspar.meme"
    path.write_text(JASPAR_LIKE)
    assert list(read_meme(path)) == ["MA0374.2", "AP1_like"]  # callers key by ID, as before
    names = meme_names(path)
    assert names == {"MA0374.2": "RSC3"}
    assert motif_label("MA0374.2", names) == "RSC3 (MA0374.2)"
    assert motif_label("AP1_like", names) == "AP1_like"


def test_report_shows_motif_matches_with_their_tf_names(tmp_path):
    database = tmp_path / "jaspar.meme"
    database.write_text(JASPAR_LIKE)
    results = tmp_path / "results" / "x"
    (results / "modisco" / "report").mkdir(parents=True)
    pd.DataFrame([{"pattern": "pos_patterns.pattern_0", "n_seqlets": 40, "match0": "MA0374.2", "qvalue0": 1e-4,
                   "match1": "AP1_like", "qvalue1": 0.5}]).to_csv(
        results / "modisco" / "report" / "motifs.tsv", sep="\t", index=False)
    sections, page = _page(results, tmp_path, {"modisco_report": {"motifs": str(database)}})
    assert "motifs" in sections
    assert "RSC3 (MA0374.2) (q = 0.0001)" in page and "AP1_like (q = 0.5)" in page


def test_marginalization_names_motifs_by_tf(tiny_results, tiny_data, tmp_path):
    # The tiny database with a JASPAR-style second word on every MOTIF line.
    named = tmp_path / "named.meme"
    named.write_text(re.sub(r"^MOTIF (\S+)$", r"MOTIF \1 TF_\1", Path(tiny_data["motifs"]).read_text(),
                            flags=re.M))
    _, page = _page(tiny_results, tmp_path, {"marginalize": {"motifs": str(named)}})
    marginalization = page.split('id="marginalization"')[1].split("<h2")[0]
    assert len(re.findall(r"<td>TF_(\w+) \(\1\)</td>", marginalization)) == 6


def test_summary_page_shows_motif_matches_with_their_tf_names():
    table = pd.DataFrame([{"dataset": "a", "status": "done", "motif1_match": "MA0374.2",
                           "motif1_match_name": "RSC3"}])
    page = summary_html(table, "batch")
    assert "<td>RSC3 (MA0374.2)</td>" in page and "motif1_match_name" not in page


# --------------------------------------------------------------------------
# Titles and sections


def test_bpnet_page_has_no_raw_inputs_nor_chrombpnet_notes(tiny_results, tmp_path):
    sections, page = _page(tiny_results, tmp_path)
    assert "<h1>BPNet report: tiny</h1>" in page and "<title>BPNet report: tiny</title>" in page
    assert "inputs" not in sections
    assert "Inputs made from raw files" not in page and "given as the models read it" not in page
    assert "Bias model QC" not in page and "Accessibility model QC" not in page


def test_raw_inputs_section_says_what_was_made(tmp_path):
    results = tmp_path / "results" / "raw"
    (results / "inputs").mkdir(parents=True)
    (results / "inputs" / "peaks.narrowPeak").write_text("chr1\t100\t300\tp\t0\t.\t1\t1\t1\t100\n")
    sections, page = _page(results, tmp_path)
    assert sections == ["inputs"]
    assert "made these model inputs from raw files" in page and "MACS3 peaks" in page


def _as_chrombpnet(tiny_results: Path, tmp_path: Path) -> Path:
    """The tiny run with a (random) ChromBPNet in place of its model, and a bias model's history."""
    results = tmp_path / "tiny"
    shutil.copytree(tiny_results, results)
    metadata = load_model(results / "fit" / "tiny.torch").metadata
    torch.manual_seed(0)
    parts = [BPNet(n_filters=4, n_layers=2, n_outputs=2, trimming=53) for _ in range(2)]
    save_model(ChromBPNet(*parts), results / "fit" / "tiny.torch", {**metadata, "kind": "chrombpnet"})
    (results / "bias_fit").mkdir()
    shutil.copy(results / "fit" / "tiny.history.tsv", results / "bias_fit" / "tiny.bias.history.tsv")
    return results


def _tracks(logits: torch.Tensor, log_counts: torch.Tensor) -> np.ndarray:
    return predicted_tracks(logits.numpy(), log_counts.numpy().reshape(-1))


def test_chrombpnet_page_is_titled_so_and_shows_the_bias_model_curves(tiny_results, tmp_path, monkeypatch):
    results = _as_chrombpnet(tiny_results, tmp_path)
    drawn = []

    def spy(*args, **kwargs):
        drawn.append(args)
        return locus_figure(*args, **kwargs)

    monkeypatch.setattr(report, "locus_figure", spy)
    sections, page = _page(results, tmp_path)
    assert "<h1>ChromBPNet report: tiny</h1>" in page
    training = page.split('id="training"')[1].split("<h2")[0]
    assert "<h3>Bias model</h3>" in training and training.count("<img") == 2

    # Example loci: the full model's prediction against the observed reads,
    # the bias-free one on its own axis.
    assert "examples" in sections and "full model's prediction" in page
    model = load_model(results / "fit" / "tiny.torch")
    with np.load(results / "attribute" / "tiny.ohe.npz") as ohe_file:
        X = torch.from_numpy(ohe_file["arr_0"]).float()
    with torch.no_grad():
        full, free = (_tracks(*outputs) for outputs in (model(X), model.accessibility(X)))
    assert len(drawn) == 3
    for chrom, start, observed, predicted, title, label, bias_free, logo in drawn:
        assert "full model" in label and bias_free is not None
        locus = np.argmin(np.abs(full - predicted).reshape(len(full), -1).max(axis=1))
        np.testing.assert_allclose(predicted, full[locus], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(bias_free, free[locus], rtol=1e-4, atol=1e-6)
        # The full model adds the bias model's reads to the accessibility model's.
        assert predicted.sum() > bias_free.sum()


def test_locus_axes_show_genomic_coordinates():
    length = 200
    observed = np.abs(np.random.default_rng(0).normal(size=(2, length)))
    figure = locus_figure("chr1", 20_009_000, observed, observed / 2, "a locus",
                          bias_free=observed / 4, logo=(np.ones(10), "ACGTACGTAC", 20_009_095))
    FigureCanvasAgg(figure).draw()
    track_ax, free_ax, logo_ax = figure.axes
    for ax in (track_ax, free_ax):
        assert ax.xaxis.get_offset_text().get_text() == ""  # no "+2.0009e7"
        labels = [label.get_text() for label in ax.get_xticklabels() if label.get_text()]
        assert labels and all(re.fullmatch(r"20,00[89],\d{3}", label) for label in labels), labels
        assert ax.get_xlabel() == "chr1 (bp)"
    assert free_ax.get_ylabel().startswith("bias-free")
    assert "chr1:20,009,095-20,009,105" in logo_ax.get_xlabel()


# --------------------------------------------------------------------------
# Stale results in the summary


def test_workflow_records_the_stage_params_it_ran_with(pipeline_run):
    workdir, config, _ = pipeline_run
    recorded = json.loads((workdir / "results" / "tiny" / RUN_PARAMS.format(name="tiny")).read_text())
    assert recorded == current_params(str(config), workdir / "results")
    assert "verbose" not in recorded["fit"] and recorded["fit"]["max_epochs"] == 2


def test_summary_calls_results_of_another_config_stale(pipeline_run, tmp_path):
    workdir, config, data = pipeline_run
    results = workdir / "results"
    table = summarize_datasets({"tiny": str(config)}, results)
    assert table.loc[0, ["status", "detail", "pipeline"]].tolist() == ["done", "", "BPNet"]

    quiet = write_json(tmp_path / "verbose.json", {**data, "verbose": True, "device": "cpu"})
    assert dataset_status(results, "tiny", current_params(str(quiet), results)) == ("done", "")

    edited = write_json(tmp_path / "edited.json", {**data, "max_epochs": 3})
    status, detail = dataset_status(results, "tiny", current_params(str(edited), results))
    assert status == "stale"
    assert "max_epochs 2 -> 3 (fit)" in detail and detail.endswith("rerun snakemake")
    page = tmp_path / "summary.html"
    table = write_summary({"tiny": str(edited)}, tmp_path / "summary.tsv", page, results)
    assert table.loc[0, "status"] == "stale"
    assert "<h1>BPNet summary: summary</h1>" in page.read_text() and "1 stale" in page.read_text()


def _finished(tmp_path: Path, recorded: dict) -> Path:
    """results/x with a report and the stage params its run recorded."""
    folder = tmp_path / "results" / "x"
    folder.mkdir(parents=True)
    (folder / "x.report.html").write_text("<html></html>")
    (folder / RUN_PARAMS.format(name="x")).write_text(json.dumps(run_params(recorded)))
    return folder


def test_stale_detail_names_each_change_once_with_its_stages(tmp_path):
    recorded = {"fit": {"sequences": "a.fa", "lr": 0.004}, "predict": {"sequences": "a.fa"},
                "marginalize": {"n_loci": 10}}
    current = {"fit": {"sequences": "b.fa", "lr": 0.004}, "predict": {"sequences": "b.fa"},
               "attribute": {"n_shuffles": 3}}
    assert params_changes(run_params(recorded), current) == [
        'sequences "a.fa" -> "b.fa" (fit, predict)', "stage added: attribute",
        "stage removed: marginalize"]
    _finished(tmp_path, recorded)
    status, detail = dataset_status(tmp_path / "results", "x", current)
    assert status == "stale" and detail.startswith("config changed: sequences")


def test_inputs_newer_than_the_report_make_results_stale(tmp_path):
    params = {"fit": {"loci": "peaks.bed", "lr": 0.004}}
    folder = _finished(tmp_path, params)
    peaks = tmp_path / "peaks.bed"  # relative paths are from the working directory
    peaks.write_text("chr1\t1\t2\n")
    report_time = (folder / "x.report.html").stat().st_mtime
    os.utime(peaks, (report_time - 10, report_time - 10))
    assert dataset_status(tmp_path / "results", "x", run_params(params)) == ("done", "")
    os.utime(peaks, (report_time + 10, report_time + 10))
    status, detail = dataset_status(tmp_path / "results", "x", run_params(params))
    assert status == "stale" and "inputs newer than the report: peaks.bed" in detail


def test_summary_title_names_the_pipelines_it_holds():
    table = pd.DataFrame({"pipeline": ["BPNet", "ChromBPNet"]})
    assert summary_title(table, "b") == "BPNet / ChromBPNet summary: b"
    assert summary_title(table.iloc[1:], "b") == "ChromBPNet summary: b"
