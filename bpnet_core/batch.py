"""Datasets of a workflow run: one pipeline JSON, or a sheet listing many.

The workflow's config is either one dataset's pipeline JSON
(``--configfile config/ENCSR000BGQ.json``) or a batch config whose only key
is ``datasets``: a sheet (TSV with a ``config`` column), a folder of
``*.json`` pipeline configs, or a list of config paths. Every dataset is
validated, files included, before the workflow plans a single job.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from . import layout
from .checks import file_problems
from .config import (
    PIPELINE_MODELS,
    StepConfig,
    fold_stages,
    imported_models,
    input_files,
    is_chrombpnet,
    model_paths,
    parse_config,
    pipeline_name,
    pipeline_stages,
    problems_error,
    read_config,
    trained_model_paths,
    with_fold_stages,
)
from .errors import InputError

BATCH_KEY = "datasets"
# Stages whose input files are checked up front (the others read only results).
CHECKED_STAGES = ("signals_bigwig", "controls_bigwig", "call_peaks", "negatives", "fit", "bias_fit",
                  "bias_qc", "bias_free_qc", "predict", "evaluate", "attribute", "modisco_report",
                  "marginalize", "variants")


@dataclass(frozen=True)
class Dataset:
    """One dataset's validated pipeline.

    Attributes
    ----------
    name : str
        The pipeline's ``name``: its results go to ``results/<name>/``.
    source : str
        The config file it came from, for messages.
    chrombpnet : bool
    models : dict
        Model key -> the file in use (a given one, or where it is trained).
    trained : dict
        Model key -> where the pipeline writes it when it trains it.
    stages : dict
        Stage -> its effective step config.
    warnings : tuple of str
        Likely mistakes that do not stop the run (e.g. a `model` naming a
        missing file, which means training a new one).
    imports : dict
        Model key -> the given file of another program (official ChromBPNet
        Keras, bpnet-lite) that the rule ``import_model`` converts into
        ``models[key]``.
    folds : dict
        With ``folds``: fold name -> stage -> that fold's step config
        (`bpnet_core.config.fold_stages`); ``models`` and ``trained`` are
        then the first fold's. Empty without folds.
    """

    name: str
    source: str
    chrombpnet: bool
    models: dict[str, str]
    trained: dict[str, str]
    stages: dict[str, StepConfig]
    warnings: tuple[str, ...] = ()
    imports: dict[str, str] = field(default_factory=dict)
    folds: dict[str, dict[str, StepConfig]] = field(default_factory=dict)

    def all_stages(self) -> dict[str, StepConfig]:
        """Every stage, each fold's named ``<fold>/<stage>`` (`bpnet_core.config.with_fold_stages`)."""
        return with_fold_stages(self.stages, self.folds)

    def test_chroms(self, fold: str) -> list[str]:
        """The chromosomes fold `fold` is evaluated on."""
        return list(self.folds[fold]["evaluate"].chroms)

    def trains(self, key: str) -> bool:
        """Whether the pipeline writes its `key` model rather than using a given file."""
        return key in self.trained and self.models[key] == self.trained[key]

    def plan(self) -> str:
        """One line: which models this dataset trains, which it imports and which given files it uses."""
        trained = [key for key in self.models if self.trains(key)]
        imported = [f"{key} {self.imports[key]}" for key in self.models if key in self.imports]
        given = [f"{key} {self.models[key]}" for key in self.models
                 if not self.trains(key) and key not in self.imports]
        parts = ([f"trains {', '.join(trained)}"] if trained else []) + (
            [f"imports {', '.join(imported)}"] if imported else []) + (
            [f"uses the given {', '.join(given)}"] if given else [])
        if self.folds:
            parts.append(f"{len(self.folds)} folds ({', '.join(self.folds)}), one model each, outputs averaged")
        return f"{self.name} ({self.source}): {'; '.join(parts)}"


def _missing_model_warnings(pipeline: StepConfig, source: str, results: str = layout.RESULTS) -> list[str]:
    """A `model` key naming a file that does not exist, outside the results folder.

    The rule stays (a missing model is trained: the spec's ``"model":
    "spi1.torch"`` names the file a first run writes), but a typo in a path
    to an existing model would silently retrain it, so it is said.
    """
    warnings = []
    for key, trained in trained_model_paths(pipeline, results).items():
        given = getattr(pipeline, key, None)
        if not given or Path(given).is_file():
            continue
        if Path(given).resolve().is_relative_to(Path(results).resolve()):
            continue  # a result of an earlier run, to be made again
        warnings.append(f"{source}: config key '{key}': {given} does not exist (looked for "
                        f"{Path(given).resolve()}); a new model will be trained into {trained}")
    return warnings


def load_dataset(data: dict, source: str) -> Dataset:
    """Validate one pipeline config (dict) and the files it names.

    Raises
    ------
    InputError
        Naming `source` and the offending key or file.
    """
    pipeline = parse_config(data, source=source)
    if not isinstance(pipeline, tuple(PIPELINE_MODELS.values())):
        raise InputError(
            f"{source}: the workflow needs a pipeline config (with fit_parameters, "
            "predict_parameters, ...); run single-step configs with `bpnet-core fit -p ...`"
        )
    stages = pipeline_stages(pipeline, source=source)
    pending = input_files(stages)
    # Every stage's problems at once (the same file in several stages, once).
    problems = [problem for stage in CHECKED_STAGES if stage in stages
                for problem in file_problems(stages[stage], pending=pending)]
    if problems:
        raise problems_error(problems, source)
    return Dataset(pipeline_name(pipeline), source, is_chrombpnet(pipeline), model_paths(pipeline),
                   trained_model_paths(pipeline), stages, tuple(_missing_model_warnings(pipeline, source)),
                   imported_models(pipeline), fold_stages(pipeline, source=source))


def read_sheet(path: str | os.PathLike) -> list[str]:
    """Config paths listed by a sheet: a TSV with a ``config`` column, or a folder of ``*.json``.

    Relative paths in a TSV are relative to the working directory, as
    ``--configfile`` paths are. Lines starting with ``#`` are comments.
    """
    path = Path(path)
    where = f"{path} (config key '{BATCH_KEY}')"
    if path.is_dir():
        configs = sorted(str(p) for p in path.glob("*.json"))
        if not configs:
            raise InputError(f"{where}: no *.json config in this folder")
        return configs
    if not path.is_file():
        raise InputError(f"{where}: sheet not found")
    with open(path, newline="") as handle:
        rows = csv.DictReader((line for line in handle if line.strip() and not line.startswith("#")),
                              delimiter="\t")
        if "config" not in (rows.fieldnames or []):
            raise InputError(f"{where}: the sheet needs a tab-separated header with a 'config' "
                             f"column (it has {', '.join(rows.fieldnames or []) or 'no header'})")
        configs = [row["config"].strip() for row in rows if (row["config"] or "").strip()]
    if not configs:
        raise InputError(f"{where}: the sheet lists no config")
    return configs


def batch_configs(config: dict, source: str) -> list[str]:
    """The config paths of a batch config ``{"datasets": sheet | folder | [paths]}``."""
    extra = sorted(set(config) - {BATCH_KEY})
    if extra:
        raise InputError(f"{source}: a batch config has only the key '{BATCH_KEY}'; "
                         f"put {', '.join(repr(k) for k in extra)} in the dataset configs")
    listed = config[BATCH_KEY]
    if isinstance(listed, str):
        return read_sheet(listed)
    if isinstance(listed, list) and listed and all(isinstance(p, str) for p in listed):
        return listed
    raise InputError(f"{source}: config key '{BATCH_KEY}' is a sheet (TSV), a folder of "
                     "configs, or a list of config paths")


def batch_name(config: dict, source: str) -> str | None:
    """The name of a batch run's summary: its sheet's (or else its config file's) stem; None for one dataset."""
    if BATCH_KEY not in config:
        return None
    listed = config[BATCH_KEY]
    return Path(listed if isinstance(listed, str) else source).stem


def load_datasets(config: dict, source: str) -> dict[str, Dataset]:
    """Every dataset of a workflow config, validated, by name.

    Parameters
    ----------
    config : dict
        One pipeline JSON, or a batch config (see the module docstring).
    source : str
        Where `config` came from, for messages.

    Raises
    ------
    InputError
        One line per bad dataset config (file and key named), or for two
        configs with the same ``name``.
    """
    if BATCH_KEY not in config:
        dataset = load_dataset(dict(config), source)
        return {dataset.name: dataset}
    datasets: dict[str, Dataset] = {}
    problems = []
    for path in batch_configs(config, source):
        try:
            dataset = load_dataset(read_config(path), path)
        except InputError as err:
            problems.append(str(err))
            continue
        if dataset.name in datasets:
            problems.append(f"{path}: name '{dataset.name}' is also the name of "
                            f"{datasets[dataset.name].source}; each dataset needs its own name")
            continue
        datasets[dataset.name] = dataset
    if problems:
        raise InputError(f"{len(problems)} of the configs listed in {source} are invalid "
                         "(nothing was run):\n" + "\n".join(problems))
    return datasets
