"""The one-page dataset report over a tiny pipeline run, rendered in Chromium."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import pytest

from bpnet_core.report import write_dataset_report

from conftest import snakemake, tiny_pipeline_config, write_json

CHROMIUM = Path("/usr/bin/chromium")
ALL_SECTIONS = ["training", "performance", "examples", "motifs", "marginalization", "config"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_results(pipeline_run) -> Path:
    return pipeline_run[0] / "results" / "tiny"


def test_workflow_writes_the_report(tiny_results):
    page = (tiny_results / "tiny.report.html").read_text()
    for section in ALL_SECTIONS:
        assert f'<h2 id="{section}">' in page
    assert '&quot;n_shuffles&quot;: 3' in page  # the effective attribute parameters, escaped


def chromium(tmp_path: Path, html: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1200,4000", *args, html.as_uri()],
        check=False, capture_output=True, text=True, timeout=120)


def test_report_has_every_section_and_embedded_pngs(tiny_results, tmp_path):
    html_path = tmp_path / "report.html"
    sections = write_dataset_report(tiny_results, "tiny", html_path, {"fit": {"lr": 0.004, "name": "<tiny>"}})
    assert sections == ALL_SECTIONS
    page = html_path.read_text()
    for section in ALL_SECTIONS:
        assert f'<h2 id="{section}">' in page
    assert "&lt;tiny&gt;" in page and "did not run" not in page

    sources = re.findall(r'<img src="([^"]*)"', page)
    # Training, performance, three example loci and at least one motif logo.
    assert len(sources) >= 6
    for source in sources:
        prefix, _, payload = source.partition(",")
        assert prefix == "data:image/png;base64"
        assert base64.b64decode(payload).startswith(PNG_MAGIC)


def test_report_renders_in_chromium(tiny_results, tmp_path):
    if not CHROMIUM.is_file():
        pytest.skip("chromium is not installed")
    html_path = tmp_path / "report.html"
    write_dataset_report(tiny_results, "tiny", html_path, {"fit": {"lr": 0.004}})

    screenshot = tmp_path / "report.png"
    result = chromium(tmp_path, html_path, f"--screenshot={screenshot}")
    assert screenshot.is_file(), result.stderr
    assert matplotlib.image.imread(screenshot).var() > 0

    dom = chromium(tmp_path, html_path, "--dump-dom").stdout
    for section in ALL_SECTIONS:
        assert f'id="{section}"' in dom


def test_stage_that_did_not_run_is_omitted_with_a_note(tiny_results, tmp_path):
    results = tmp_path / "tiny"
    shutil.copytree(tiny_results, results, ignore=shutil.ignore_patterns("marginalize"))
    html_path = tmp_path / "report.html"
    sections = write_dataset_report(results, "tiny", html_path)
    assert sections == ["training", "performance", "examples", "motifs"]
    page = html_path.read_text()
    assert 'id="marginalization"' not in page and 'id="config"' not in page
    assert "Marginalization: the marginalize stage did not run." in page
    assert "Effective configuration: no configuration was given." in page


def test_snakemake_report_carries_the_dataset_page(pipeline_run, tmp_path):
    workdir, config, _ = pipeline_run
    result = snakemake(workdir, config, "--report", str(tmp_path / "report.html"))
    assert result.returncode == 0, result.stderr[-2000:]
    page = (tmp_path / "report.html").read_text()
    assert "Dataset reports" in page and "tiny.report.html" in page


def test_report_of_a_given_model_shows_its_example_loci(pipeline_run, tiny_data, tmp_path):
    """A `model` naming an existing file outside results/: the fit never writes
    fit/<name>.torch, and the report draws the example loci with the given model."""
    given = tmp_path / "given.torch"
    shutil.copy2(pipeline_run[0] / "results" / "tiny" / "fit" / "tiny.torch", given)
    data = {**tiny_pipeline_config(tiny_data, name="given", model=str(given)),
            "attribute_parameters": {"n_shuffles": 3, "batch_size": 8}}
    workdir = tmp_path / "run"
    workdir.mkdir()
    result = snakemake(workdir, write_json(workdir / "given.json", data))
    assert result.returncode == 0, result.stdout + result.stderr
    results = workdir / "results" / "given"
    assert not (results / "fit" / "given.torch").exists()
    page = (results / "given.report.html").read_text()
    assert '<h2 id="examples">' in page
    assert "the predict or attribute stage did not run" not in page
