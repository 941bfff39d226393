"""Validated configs for every step of the BPNet and ChromBPNet pipelines.

One pydantic model per JSON of the parameter reference: the single-step
configs (`FitConfig`, `PredictConfig`, `EvaluateConfig`, `AttributeConfig`,
`ModiscoMotifsConfig`, `ModiscoReportConfig`, `MotifHitsConfig`, `MarginalizeConfig`,
`ChromBPNetFitConfig`) and the two pipelines (`BPNetPipelineConfig`,
`ChromBPNetPipelineConfig`).

A pipeline's top-level keys are the defaults of its nested ``*_parameters``
blocks: for each stage, the effective config is the stage's own defaults,
overridden by the top-level keys that the stage knows, overridden by the
non-null keys of the stage's block. ``null`` in a block means "inherit".

Only the schema is checked here. Checks against files (existence, chromosome
names) are in `bpnet_core.checks`, run when a stage runs.

Which file holds what (everything public is importable from here):

- `schemas`: the pydantic models (`StepConfig` and every step, stage and
  pipeline config), `RUNTIME_KEYS` and `StageParams`, the registries
  `STEP_MODELS`, `PIPELINE_MODELS` and `INPUT_STAGES`.
- `validation`: validation errors as one line per key (`problems_error`,
  `as_step_config`).
- `loading`: config files and dicts to configs (`read_config`,
  `detect_kind`, `parse_config`, `load_config`).
- `pipeline`: how a pipeline's keys reach its stages (`pipeline_stages`,
  `planned_stages`, `bias_fit_config`), its folds (`fold_splits`,
  `fold_stages`, `n_folds`), its input stages (`prepare_inputs`,
  `input_files`) and its model files (`model_paths`, `trained_model_paths`,
  `imported_models`).
- `schema`: the JSON Schema of all configs (`json_schema`).
"""

from .loading import detect_kind, load_config, parse_config, read_config
from .pipeline import (
    FOLD_STAGES,
    bias_fit_config,
    fold_splits,
    fold_stages,
    imported_models,
    input_files,
    is_chrombpnet,
    model_path,
    model_paths,
    n_folds,
    pipeline_name,
    pipeline_stages,
    planned_stages,
    prepare_inputs,
    trained_model_paths,
    with_fold_stages,
)
from .schema import json_schema
from .schemas import (
    INPUT_STAGES,
    PIPELINE_MODELS,
    RUNTIME_KEYS,
    STEP_MODELS,
    AttributeConfig,
    BiasFitConfig,
    BiasFitParameters,
    BiasFreeQCConfig,
    BiasQCConfig,
    BPNetPipelineConfig,
    ChromBPNetFitConfig,
    ChromBPNetPipelineConfig,
    EvaluateConfig,
    FitConfig,
    FoldConfig,
    MarginalizeConfig,
    ModelStepConfig,
    ModiscoMotifsConfig,
    ModiscoReportConfig,
    MotifHitsConfig,
    NegativesConfig,
    Paths,
    PeakCallingConfig,
    Precision,
    PredictConfig,
    ReadsConfig,
    StageParams,
    StepConfig,
    VariantsConfig,
    WindowedConfig,
)
from .validation import as_step_config, problems_error

__all__ = [
    "FOLD_STAGES", "INPUT_STAGES", "PIPELINE_MODELS", "RUNTIME_KEYS", "STEP_MODELS", "AttributeConfig", "BiasFitConfig",
    "BiasFitParameters", "BiasFreeQCConfig", "BiasQCConfig", "BPNetPipelineConfig", "ChromBPNetFitConfig",
    "ChromBPNetPipelineConfig", "EvaluateConfig", "FitConfig", "FoldConfig", "MarginalizeConfig",
    "ModelStepConfig", "ModiscoMotifsConfig", "ModiscoReportConfig", "MotifHitsConfig", "NegativesConfig", "Paths",
    "PeakCallingConfig", "Precision", "PredictConfig", "ReadsConfig", "StageParams", "StepConfig",
    "VariantsConfig", "WindowedConfig", "as_step_config", "bias_fit_config", "detect_kind", "fold_splits", "fold_stages", "imported_models", "input_files", "is_chrombpnet",
    "json_schema", "load_config", "model_path", "model_paths", "n_folds", "parse_config", "pipeline_name",
    "pipeline_stages", "planned_stages", "prepare_inputs", "problems_error", "read_config",
    "trained_model_paths", "with_fold_stages",
]
