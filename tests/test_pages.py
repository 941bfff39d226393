"""Pages label things right: titles by pipeline, sections that apply, coordinates,
TF names of motif matches, the bias model's curves, and stale results in the summary."""

from __future__ import annotations

import base64
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
from matplotlib.colors import to_hex
from matplotlib.patches import PathPatch

from bpnet_core import pages, report
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


# --------------------------------------------------------------------------
# The house style: one stylesheet, one table writer, one logo drawer


def _every_page(tmp_path: Path) -> dict[str, str]:
    """The page of every page builder, over small made-up results; names hold HTML."""
    from bpnet_core import bias_free_qc, bias_qc, marginalize, modisco
    from bpnet_core.config import MarginalizeConfig

    results = tmp_path / "results" / "x"
    results.mkdir(parents=True)
    write_dataset_report(results, "<x>", tmp_path / "report.html")

    motif = "<M&1>"
    table = pd.DataFrame([{"pattern": "pos_patterns.pattern_0", "n_seqlets": 12, "match0": motif,
                           "pvalue0": 1e-4, "qvalue0": 1e-3}])
    logos = {"pos_patterns.pattern_0.fwd": "logos/p.fwd.png", "pos_patterns.pattern_0.rev": "logos/p.rev.png",
             motif: "logos/motif0.png"}
    modisco_page = modisco._report_html(table, logos, Path("m<1>.h5"), "db&.meme", {motif: np.ones((3, 4)) / 4}, 1)

    config = MarginalizeConfig(model="m<1>.torch", sequences="g.fa", loci="p&q.bed", motifs="db&.meme",
                               in_window=206, out_window=100)
    summary = pd.DataFrame([{"motif": motif, "consensus": "TGA", "n_loci": 5, "delta_log_counts": 0.5,
                             "delta_log_counts_se": np.nan}])
    marginalize._write_report(tmp_path / "marginalize", config, summary, summary, np.ones((2, 100)), {})

    pattern = {"pattern": "pos_patterns.pattern_0", "n_seqlets": 12, "best_match": motif, "qvalue": 1e-3,
               "kind": "TF", "consensus": "TGA<"}
    bias_page = bias_qc._qc_html({
        "tf_motif_check": True, "flagged": True, "reasons": [f"pattern matches {motif}"], "patterns": [pattern],
        "count_pearson": {"peaks": {"n_regions": 10, "pearson": 0.5}}, "min_pearson": {"peaks": -0.3},
        "model": "b<1>.torch", "motifs": "db&.meme", "max_qvalue": 0.05})
    free_page = bias_free_qc.qc_html({
        "bias_free": False, "reasons": [f"footprint of {motif}"], "patterns": [pattern], "modisco_check": True,
        "footprints": [{"model": "accessibility", "motif": motif, "footprint_fold": 3.25}],
        "mean_footprint_fold": {"accessibility": 3.25, "full": 9.0}, "max_footprint_fold": 3.0, "n_regions": 10})
    return {"report": (tmp_path / "report.html").read_text(),
            "summary": summary_html(pd.DataFrame([{"dataset": "<x>", "status": "done", "top": motif,
                                                   "seconds": 1.5}]), "batch <1>"),
            "modisco": modisco_page,
            "marginalize": (tmp_path / "marginalize" / "report.html").read_text(),
            "bias_qc": bias_page,
            "bias_free_qc": free_page}


def test_every_page_is_one_document_with_the_shared_stylesheet_and_escaped_names(tmp_path):
    built = _every_page(tmp_path)
    assert len(built) == 6
    for name, page in built.items():
        assert page.startswith("<!DOCTYPE html>"), name
        assert '<meta charset="utf-8">' in page and page.count("<title>") == 1, name
        # One stylesheet, the shared one, and no style of a page's own.
        assert page.count("<style") == 1 and f"<style>{pages.STYLE}</style>" in page, name
        assert " style=" not in page, name
        assert page.rstrip().endswith("</html>"), name
    # User text (motif, file and dataset names) goes in escaped.
    for name in ("modisco", "marginalize", "bias_qc", "bias_free_qc", "summary"):
        assert "<M&1>" not in built[name] and "&lt;M&amp;1&gt;" in built[name], name
    assert "<title>BPNet report: &lt;x&gt;</title>" in built["report"]
    assert "<title>batch &lt;1&gt;</title>" in built["summary"]
    assert "m&lt;1&gt;.h5" in built["modisco"] and "db&amp;.meme" in built["modisco"]
    assert "p&amp;q.bed" in built["marginalize"] and "m&lt;1&gt;.torch" in built["marginalize"]
    assert "b&lt;1&gt;.torch" in built["bias_qc"] and "<code>TGA&lt;</code>" in built["bias_qc"]
    # Verdicts in the house classes: flags red, passes green.
    assert "class='flag'" in built["bias_qc"] and "class='flag'" in built["bias_free_qc"]
    assert ".flag, .failed { color: #cf222e; }" in pages.STYLE and ".pass, .done { color: #1a7f37; }" in pages.STYLE
    # Images are linked by relative path or embedded, never both in one src.
    assert re.findall(r'<img src="([^"]+)"', built["modisco"]) == [
        "logos/p.fwd.png", "logos/p.rev.png", "logos/motif0.png"]
    assert re.findall(r'<img src="([^"]+)"', built["marginalize"]) == ["figures/delta_log_counts.png"]


def test_table_escapes_text_keeps_html_and_aligns_numbers():
    page = pages.table([{"name": "<b>", "n": 3, "r": 0.123456, "missing": np.nan},
                        {"name": pages.Html("<i>x</i>"), "n": None}])
    assert "<th>name</th><th>n</th><th>r</th><th>missing</th>" in page
    assert "<td>&lt;b&gt;</td>" in page and "<td><i>x</i></td>" in page
    assert '<td class="num">3</td>' in page and '<td class="num">0.1235</td>' in page
    assert page.count("<td></td>") == 4  # NaN and the keys the second row does not have
    assert "<th>only</th>" in pages.table([], ["only"]) and "<td>" not in pages.table([], ["only"])
    assert pages.cell("a & b") == "a &amp; b" and pages.lines(["<a>", "b"]) == "&lt;a&gt;<br>b"


def test_img_embeds_bytes_and_quotes_paths():
    figure = pages.new_figure(1, 1)
    embedded = pages.embed(figure, alt='a "b"')
    source = re.fullmatch(r'<img src="data:image/png;base64,([^"]+)" alt="a &quot;b&quot;">', embedded)
    assert source and base64.b64decode(source.group(1)).startswith(b"\x89PNG")
    assert pages.img("logos/a b&.png", width=240) == '<img src="logos/a%20b%26.png" alt="figure" width="240">'


def _letters(ax) -> list:
    return [patch for patch in ax.patches if isinstance(patch, PathPatch)]


def test_draw_logo_draws_negative_contributions_below_zero():
    figure = pages.new_figure(4, 2)
    ax = figure.add_subplot()
    scores = np.array([0.5, -0.8, 0.0, 0.3, -0.1])
    sequence = "ACGTA"
    matrix = report.logo_matrix(scores, sequence)
    assert matrix.shape == (5, 4) and (matrix != 0).sum() == 4
    np.testing.assert_array_equal(matrix.sum(axis=1), scores)
    np.testing.assert_array_equal(matrix[[0, 1, 3, 4], [0, 1, 3, 0]], scores[[0, 1, 3, 4]])
    pages.draw_logo(ax, matrix)
    FigureCanvasAgg(figure).draw()
    low, high = ax.get_ylim()
    assert low <= -0.8 < 0 and high >= 0.5
    letters = _letters(ax)
    assert len(letters) == np.count_nonzero(scores)
    below = [patch for patch in letters if patch.get_path().get_extents().y1 <= 1e-9]
    above = [patch for patch in letters if patch.get_path().get_extents().y0 >= -1e-9]
    assert len(below) == 2 and len(above) == 2
    # The C at position 1 reaches down to its score, in the C colour.
    c_patch = min(below, key=lambda patch: patch.get_path().get_extents().y0)
    assert c_patch.get_path().get_extents().y0 == pytest.approx(-0.8, abs=1e-6)
    assert to_hex(c_patch.get_facecolor()) == pages.BASE_COLORS["C"].lower()
    assert {to_hex(patch.get_facecolor()) for patch in letters} == {
        pages.BASE_COLORS[base].lower() for base in "ACT"}


def test_draw_logo_of_a_motif_stacks_every_letter_and_all_zero_draws_nothing():
    figure = pages.new_figure(4, 2)
    ax, empty_ax = figure.subplots(1, 2)
    ppm = np.array([[0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]])
    pages.draw_logo(ax, ppm)
    assert len(_letters(ax)) == 8 and ax.get_ylim() == pytest.approx((0, 1))
    pages.draw_logo(empty_ax, np.zeros((3, 4)))
    assert not _letters(empty_ax) and empty_ax.get_ylim()[1] > empty_ax.get_ylim()[0]
    with pytest.raises(ValueError, match="A, C, G, T|ACGT"):
        pages.draw_logo(ax, np.ones((3, 5)))


def test_locus_logo_is_drawn_by_the_one_drawer(monkeypatch):
    drawn = []
    monkeypatch.setattr(report, "draw_logo", lambda ax, matrix, **kw: drawn.append(matrix) or pages.draw_logo(
        ax, matrix, **kw))
    scores = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    figure = locus_figure("chr1", 1000, np.ones((2, 20)), np.ones((2, 20)), "a locus",
                          logo=(scores, "ACNGT", 1008))
    FigureCanvasAgg(figure).draw()
    logo_ax = figure.axes[-1]
    assert len(drawn) == 1 and drawn[0].shape == (5, 4)
    # The N's score is not drawn, nor the zero.
    assert len(_letters(logo_ax)) == 3
    assert logo_ax.get_ylim()[0] < -2.0 and logo_ax.get_ylim()[1] > 3.0
