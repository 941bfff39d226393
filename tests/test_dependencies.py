"""The third-party code this package leans on: declared, and its internals still there.

Where the package uses a library's internals (not its documented API),
pyproject.toml pins an upper bound; these tests fail loudly, naming the
library, when a version inside the bounds no longer has what is used.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Import name -> distribution name, where they differ.
DISTRIBUTIONS = {"yaml": "pyyaml", "pyBigWig": "pybigwig", "modiscolite": "modisco-lite", "macs3": "macs3"}


def _imported_modules(paths) -> set[str]:
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def _declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {re.split(r"[<>=!~\[ ;]", spec, maxsplit=1)[0].lower() for spec in project["dependencies"]}


def test_every_third_party_import_is_declared():
    sources = [*(REPO / "bpnet_core").rglob("*.py"), *(REPO / "workflow" / "scripts").glob("*.py")]
    third_party = {name for name in _imported_modules(sources)
                   if name not in sys.stdlib_module_names and name not in {"bpnet_core", "snakemake"}}
    undeclared = {name for name in third_party if DISTRIBUTIONS.get(name, name).lower() not in _declared()}
    assert not undeclared, f"imported by bpnet_core or workflow/scripts but not in pyproject.toml: {undeclared}"


INTERNALS = [
    # (module, attribute): what bpnet_core calls that is not a documented API.
    ("tangermeme.deep_lift_shap", "deep_lift_shap"),
    ("tangermeme.ersatz", "substitute"),
    ("tangermeme.utils", "pwm_consensus"),
    ("tangermeme.io", "extract_loci"),
    ("tangermeme.match", "extract_matching_loci"),
    ("modiscolite.extract_seqlets", None),                  # modisco.py finds its frames by module name
    ("modiscolite.tfmodisco", "TFMoDISco"),
    ("modiscolite.util", "calculate_window_offsets"),
    ("modiscolite.io", "save_hdf5"),
    ("memelite.tomtom", "tomtom"),
    ("figwig", "BigWigReader"),
    ("finemo.main", "call_hits"),
    ("finemo.main", "report"),
    ("finemo.data_io", "write_regions_npz"),
]


@pytest.mark.parametrize("module, attribute", INTERNALS, ids=[f"{m}.{a or ''}" for m, a in INTERNALS])
def test_library_internals_are_still_there(module, attribute):
    loaded = importlib.import_module(module)
    if attribute is not None:
        assert hasattr(loaded, attribute), f"{module} no longer has {attribute}: check the pinned upper bound"


def test_finemo_still_takes_the_arguments_motif_hits_passes():
    from finemo import main

    for function, names in [
        (main.call_hits, ("regions_path", "peaks_path", "modisco_h5_path", "chrom_order_path",
                          "motifs_include_path", "motif_names_path", "motif_lambdas_path", "out_dir",
                          "cwm_trim_threshold_default", "lambda_default", "step_size_max", "step_size_min",
                          "sqrt_transform", "convergence_tol", "max_steps", "step_adjust", "mode", "no_post_filter")),
        (main.report, ("regions_path", "hits_dir", "modisco_h5_path", "peaks_path", "motifs_include_path",
                       "motif_names_path", "out_dir", "modisco_region_width", "cwm_trim_threshold")),
    ]:
        parameters = inspect.signature(function).parameters
        missing = [name for name in names if name not in parameters]
        assert not missing, f"finemo's {function.__name__} no longer takes {missing}: check the pinned upper bound"


def test_deep_lift_shap_still_takes_the_arguments_attribute_passes():
    from tangermeme.deep_lift_shap import deep_lift_shap

    parameters = inspect.signature(deep_lift_shap).parameters
    for name in ("args", "n_shuffles", "random_state", "hypothetical", "batch_size", "device", "verbose",
                 "warning_threshold"):
        assert name in parameters, f"tangermeme's deep_lift_shap no longer takes {name!r}"


def test_deep_lift_shap_still_runs_sequences_then_their_references():
    """attribute.ProfileHead (paired) and the convergence check read each batch as [sequences; references]."""
    import torch
    from tangermeme.deep_lift_shap import deep_lift_shap

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear, self.batches = torch.nn.Linear(4 * 8, 1), []

        def forward(self, X):
            self.batches.append(X.detach().clone())
            return self.linear(X.reshape(len(X), -1))

    g = torch.Generator().manual_seed(0)
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (3, 8), generator=g), 4).permute(0, 2, 1).float()
    references = torch.nn.functional.one_hot(torch.randint(0, 4, (3, 2, 8), generator=g), 4).permute(0, 1, 3, 2)
    probe = Probe()
    deep_lift_shap(probe, X, references=references.float(), batch_size=4, warning_threshold=float("inf"))
    pairs = [(i // 2, i % 2) for i in range(6)]
    seen = 0
    for batch in probe.batches:
        half = len(batch) // 2
        for k in range(half):
            i, j = pairs[seen + k]
            assert torch.equal(batch[k], X[i]) and torch.equal(batch[half + k], references[i, j].float()), \
                "tangermeme's deep_lift_shap no longer runs [sequences; references]: check its pinned upper bound"
        seen += half
    assert seen == 6

