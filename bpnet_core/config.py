"""Validated configs for every step of the BPNet and ChromBPNet pipelines.

One pydantic model per JSON of the parameter reference: the single-step
configs (`FitConfig`, `PredictConfig`, `EvaluateConfig`, `AttributeConfig`,
`ModiscoMotifsConfig`, `ModiscoReportConfig`, `MarginalizeConfig`,
`ChromBPNetFitConfig`) and the two pipelines (`BPNetPipelineConfig`,
`ChromBPNetPipelineConfig`).

A pipeline's top-level keys are the defaults of its nested ``*_parameters``
blocks: for each stage, the effective config is the stage's own defaults,
overridden by the top-level keys that the stage knows, overridden by the
non-null keys of the stage's block. ``null`` in a block means "inherit".

Only the schema is checked here. Checks against files (existence, chromosome
names) are in `bpnet_core.checks`, run when a stage runs.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    create_model,
    model_validator,
)

from .errors import InputError

Paths = Union[str, list[str]]


class StepConfig(BaseModel):
    """Base of every config: unknown keys are errors, defaults are checked."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    def to_params(self) -> dict[str, Any]:
        """The config as plain JSON data with sorted keys (Snakemake params)."""
        return dict(sorted(self.model_dump(mode="json").items()))


class WindowedConfig(StepConfig):
    """Keys shared by every step that runs a model over genomic windows."""

    batch_size: PositiveInt = 64
    in_window: PositiveInt = 2114
    out_window: PositiveInt = 1000
    verbose: bool = False
    # Extension of the reference: "auto" picks the GPU when there is one.
    device: str = "auto"

    @model_validator(mode="after")
    def _check_windows(self):
        if self.in_window < self.out_window:
            raise ValueError(
                f"in_window ({self.in_window}) must be at least out_window "
                f"({self.out_window})"
            )
        if (self.in_window - self.out_window) % 2:
            raise ValueError(
                f"in_window - out_window ({self.in_window} - {self.out_window}) "
                "must be even, so that the output window is centred"
            )
        for key in ("chroms", "training_chroms", "validation_chroms"):
            value = getattr(self, key, None)
            if value is not None and len(value) == 0:
                raise ValueError(f"{key} is an empty list; name at least one chromosome")
        return self


class FitConfig(WindowedConfig):
    """BPNet Fit: train a model on `loci` with `signals` (and `controls`)."""

    n_filters: PositiveInt = 64
    n_layers: NonNegativeInt = 8
    profile_output_bias: bool = True
    count_output_bias: bool = True
    name: str = "bpnet"
    max_jitter: NonNegativeInt = 128
    reverse_complement: bool = True
    max_epochs: PositiveInt = 50
    validation_iter: PositiveInt = 100
    lr: PositiveFloat = 0.001
    alpha: NonNegativeFloat = 1.0
    min_counts: float = 0
    max_counts: float = 99999999
    training_chroms: list[str]
    validation_chroms: list[str]
    sequences: str
    loci: Paths
    signals: list[str] = Field(min_length=1)
    controls: Optional[list[str]] = None
    random_state: Optional[int] = 0
    # Extension: validation rounds without improvement before training stops.
    early_stopping: Optional[PositiveInt] = 10

    @model_validator(mode="after")
    def _check_fit(self):
        overlap = sorted(set(self.training_chroms) & set(self.validation_chroms))
        if overlap:
            raise ValueError(
                "training_chroms and validation_chroms overlap: "
                + ", ".join(overlap)
            )
        if self.min_counts > self.max_counts:
            raise ValueError(
                f"min_counts ({self.min_counts}) is above max_counts ({self.max_counts})"
            )
        if self.controls is not None and len(self.controls) == 0:
            raise ValueError("controls is an empty list; use null for no controls")
        return self


def _optional_fields(models, exclude=()) -> dict[str, Any]:
    """The keys of `models` (first definition wins), each optional (null)."""
    fields: dict[str, Any] = {}
    for model in models:
        for key, info in model.model_fields.items():
            if key not in fields and key not in exclude:
                fields[key] = (Optional[info.annotation], None)
    return fields


def _partial(model: type[StepConfig], name: str) -> type[StepConfig]:
    """A model with the same keys and types as `model`, each optional (null)."""
    return create_model(name, __base__=StepConfig,
                        **_optional_fields([model], exclude={"bias_fit_parameters"}))


FitParameters = _partial(FitConfig, "FitParameters")


class ChromBPNetFitConfig(FitConfig):
    """ChromBPNet Fit: a frozen bias model plus an accessibility model."""

    name: str = "chrombpnet"
    alpha: NonNegativeFloat = 10.0
    beta: PositiveFloat = 0.5
    negatives: Optional[Paths] = None
    bias_model: Optional[str] = None
    accessibility_model: Optional[str] = None
    bias_fit_parameters: Optional[FitParameters] = None


class ModelStepConfig(WindowedConfig):
    """Keys of every step that runs a trained `model` at `loci` on `chroms`."""

    chroms: Optional[list[str]] = None
    model: str
    sequences: str
    loci: Paths
    controls: Optional[list[str]] = None


class PredictConfig(ModelStepConfig):
    """BPNet Predict: predicted profiles and counts at `loci` on `chroms`."""

    # Accepted as in the ChromBPNet pipeline example; read by evaluate.
    signals: Optional[list[str]] = None
    profile_filename: str = "y_profile.npz"
    counts_filename: str = "y_counts.npz"
    # Extension: predicted bigWigs are <bigwig_prefix>.<output index>.bw;
    # null derives the prefix from profile_filename.
    bigwig_prefix: Optional[str] = None


class EvaluateConfig(ModelStepConfig):
    """Evaluate: metrics of a model against observed `signals` at `loci`."""

    signals: list[str] = Field(min_length=1)
    performance_filename: str = "performance.tsv"


class AttributeConfig(ModelStepConfig):
    """BPNet Attribute: DeepLIFT/SHAP contributions at `loci` on `chroms`."""

    output: Literal["profile", "counts"] = "profile"
    ohe_filename: str = "ohe.npz"
    attr_filename: str = "attr.npz"
    n_shuffles: PositiveInt = 20
    random_state: Optional[int] = 0


class ModiscoMotifsConfig(StepConfig):
    """Parameters of `modisco motifs`."""

    n_seqlets: PositiveInt = 100000
    # Extension: the central window (bp) of the attributions that TF-MoDISco
    # reads, `modisco motifs -w`.
    window: PositiveInt = 400
    output_filename: str = "modisco_results.h5"
    verbose: bool = False


class ModiscoReportConfig(StepConfig):
    """Parameters of `modisco report`."""

    motifs: Optional[str] = None
    output_folder: str = "modisco_report/"
    verbose: bool = False


class MarginalizeConfig(ModelStepConfig):
    """BPNet Marginalize: effect of inserting each motif into background loci."""

    motifs: str
    n_loci: PositiveInt = 100
    shuffle: bool = False
    output_filename: str = "marginalize/"
    # The pipeline examples call the same folder `output_folder`.
    output_folder: Optional[str] = None
    random_state: Optional[int] = 0
    minimal: bool = True


# Keys that name one stage's output file: never inherited from the top level.
_OUTPUT_KEYS = {
    "profile_filename", "counts_filename", "bigwig_prefix", "performance_filename",
    "ohe_filename", "attr_filename", "output_filename", "output_folder",
}


_BPNET_STAGES = {
    "fit": FitConfig,
    "predict": PredictConfig,
    "evaluate": EvaluateConfig,
    "attribute": AttributeConfig,
    "modisco_motifs": ModiscoMotifsConfig,
    "modisco_report": ModiscoReportConfig,
    "marginalize": MarginalizeConfig,
}
_CHROMBPNET_STAGES = {"bias_fit": FitConfig, **_BPNET_STAGES, "fit": ChromBPNetFitConfig}
STEP_MODELS: dict[str, type[StepConfig]] = {**_BPNET_STAGES, "chrombpnet_fit": ChromBPNetFitConfig}


def _pipeline_model(name: str, stages: dict[str, type[StepConfig]]) -> type[StepConfig]:
    fields = _optional_fields(stages.values(), exclude=_OUTPUT_KEYS | {"bias_fit_parameters"})
    # `model` names the model to use instead of fitting one (see model_path).
    for stage, model in stages.items():
        fields[f"{stage}_parameters"] = (Optional[_partial(model, f"{stage}_parameters")], None)
    return create_model(name, __base__=StepConfig, **fields)


BPNetPipelineConfig = _pipeline_model("BPNetPipelineConfig", _BPNET_STAGES)
ChromBPNetPipelineConfig = _pipeline_model("ChromBPNetPipelineConfig", _CHROMBPNET_STAGES)

# Defaults of a pipeline block that win over the top level (the reference's
# bias model is a 4-layer BPNet whatever the accessibility model's depth).
_BLOCK_DEFAULTS = {"bias_fit": {"n_layers": 4}}

# Stages that always run; the others run when their block is in the config.
_CORE_STAGES = {"bias_fit", "fit", "predict", "evaluate"}

_CHROMBPNET_KEYS = {"bias_model", "accessibility_model", "beta", "negatives", "bias_fit_parameters"}


# --------------------------------------------------------------------------
# Errors


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The valid keys of the (nested) model at `loc`."""
    for part in loc:
        info = model.model_fields.get(part) if isinstance(part, str) else None
        if info is None:
            return []
        inner = [a for a in getattr(info.annotation, "__args__", (info.annotation,))
                 if isinstance(a, type) and issubclass(a, BaseModel)]
        if not inner:
            return []
        model = inner[0]
    return list(model.model_fields)


_TYPE_NAMES = {"str", "int", "float", "bool", "list[str]"}


def _describe(loc: tuple, error: dict, model: type[BaseModel], prefix: str, expected: list[str]) -> str:
    key = ".".join(str(p) for p in ((prefix,) if prefix else ()) + loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        valid = _fields_at(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown key '{key}'{hint}"
    if kind == "missing":
        return f"missing required key '{key}'"
    got = json.dumps(error.get("input"), default=str)
    if len(expected) > 1:
        return f"key '{key}': expected {' or '.join(expected)} (got {got})"
    msg = error["msg"].removeprefix("Value error, ")
    if kind == "value_error":
        return f"{key}: {msg}" if key else msg
    return f"key '{key}': {msg} (got {got})"


def _format(err: ValidationError, model: type[BaseModel], source: str, prefix: str = "") -> InputError:
    # A union type (str or list of str) reports one error per member, with the
    # member's type name as the last part of the location: group them by key.
    grouped: dict[tuple, tuple[dict, list[str]]] = {}
    for error in err.errors():
        loc = tuple(error["loc"])
        expected = []
        if len(loc) > 1 and str(loc[-1]).lower() in _TYPE_NAMES:
            loc, expected = loc[:-1], [str(error["loc"][-1])]
        _, types = grouped.setdefault(loc, (error, []))
        types.extend(expected)
    lines = [_describe(loc, error, model, prefix, types) for loc, (error, types) in grouped.items()]
    where = f"{source}: " if source else ""
    if len(lines) == 1:
        return InputError(where + lines[0])
    return InputError(f"{where}{len(lines)} problems:\n  - " + "\n  - ".join(lines))


def _validate(model: type[StepConfig], data: dict, source: str, prefix: str = ""):
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise _format(err, model, source, prefix) from None


# --------------------------------------------------------------------------
# Loading


def read_json(path: str | Path) -> dict:
    """Read a JSON config, turning syntax errors into one clear message."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"{path}: config file not found") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read config file ({err.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{path}: not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}"
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a config is a JSON object ({{...}}), not {type(data).__name__}")
    return data


def detect_kind(data: dict) -> str:
    """Which config a JSON object is, from its keys.

    Returns one of the keys of `STEP_MODELS`, or ``"bpnet_pipeline"`` /
    ``"chrombpnet_pipeline"``.
    """
    chrombpnet = bool(_CHROMBPNET_KEYS & data.keys())
    if any(key.endswith("_parameters") and key != "bias_fit_parameters" for key in data):
        return "chrombpnet_pipeline" if chrombpnet else "bpnet_pipeline"
    if chrombpnet:
        return "chrombpnet_fit"
    if {"training_chroms", "validation_chroms"} & data.keys():
        return "fit"
    if {"ohe_filename", "attr_filename", "n_shuffles", "output"} & data.keys():
        return "attribute"
    if {"n_loci", "minimal", "shuffle"} & data.keys() or ("motifs" in data and "model" in data):
        return "marginalize"
    if "performance_filename" in data:
        return "evaluate"
    if "n_seqlets" in data:
        return "modisco_motifs"
    if "model" in data:
        return "predict"
    return "fit"


PIPELINE_MODELS = {
    "bpnet_pipeline": BPNetPipelineConfig,
    "chrombpnet_pipeline": ChromBPNetPipelineConfig,
}


def parse_config(data: dict, source: str = "<config>", kind: str | None = None) -> StepConfig:
    """Validate a config given as a dict.

    Parameters
    ----------
    data : dict
        The JSON object.
    source : str
        Where it came from (a file name), for messages.
    kind : str, optional
        A key of `STEP_MODELS` or a pipeline kind; detected when None.
        ``"fit"`` with ChromBPNet keys becomes ``"chrombpnet_fit"``.

    Raises
    ------
    InputError
        One message naming `source` and each offending key.
    """
    detected = detect_kind(data)
    if kind is None or (kind == "fit" and detected == "chrombpnet_fit"):
        kind = detected
    model = PIPELINE_MODELS.get(kind) or STEP_MODELS.get(kind)
    if model is None:
        raise InputError(f"{source}: unknown config kind '{kind}'")
    config = _validate(model, data, source)
    if kind in PIPELINE_MODELS:
        # Every stage's effective config must validate too.
        pipeline_stages(config, source=source)
    return config


def load_config(path: str | Path, kind: str | None = None) -> StepConfig:
    """Read and validate a JSON config file (see `parse_config`)."""
    return parse_config(read_json(path), source=str(path), kind=kind)


# --------------------------------------------------------------------------
# Pipelines


def is_chrombpnet(config: StepConfig) -> bool:
    return isinstance(config, ChromBPNetPipelineConfig)


def pipeline_name(config: StepConfig) -> str:
    return config.name or ("chrombpnet" if is_chrombpnet(config) else "bpnet")


def _stage_models(config: StepConfig) -> dict[str, type[StepConfig]]:
    return _CHROMBPNET_STAGES if is_chrombpnet(config) else _BPNET_STAGES


def _merge(config: StepConfig, stage: str, extra: dict | None = None) -> dict:
    """Top level < block defaults < the stage's block < `extra` (non-null only)."""
    model = _stage_models(config)[stage]
    top = {
        key: value
        for key, value in config.model_dump(exclude_none=True).items()
        if key in model.model_fields and not key.endswith("_parameters") and key not in _OUTPUT_KEYS
    }
    block = getattr(config, f"{stage}_parameters")
    nested = block.model_dump(exclude_none=True) if block is not None else {}
    merged = {**top, **_BLOCK_DEFAULTS.get(stage, {}), **nested}
    for key, value in (extra or {}).items():
        merged.setdefault(key, value)
    return merged


def pipeline_stages(config: StepConfig, model: str | None = None, source: str = "<config>") -> dict[str, StepConfig]:
    """The effective config of every stage of a pipeline.

    Parameters
    ----------
    config : BPNetPipelineConfig or ChromBPNetPipelineConfig
    model : str, optional
        The model file that the stages after fit use (see `model_path`);
        defaults to ``model_path(config)``.
    source : str
        The config's file name, for messages.

    Returns
    -------
    dict
        Stage name -> validated step config. Stages: ``fit``, ``predict``,
        ``evaluate`` (and ``bias_fit`` for ChromBPNet) always; ``attribute``,
        ``modisco_motifs``, ``modisco_report``, ``marginalize`` when their
        ``*_parameters`` block is in the config or the top level gives
        all they need.
    """
    model = model or model_path(config)
    models = _stage_models(config)
    merged = {stage: _merge(config, stage) for stage in models}
    fit = merged["fit"]
    # The bias model trains on the negatives, not on the top-level (peak) loci.
    bias_block = getattr(config, "bias_fit_parameters", None)
    if "bias_fit" in merged and config.negatives is not None and (bias_block is None or bias_block.loci is None):
        merged["bias_fit"]["loci"] = config.negatives
    for stage in ("predict", "evaluate", "attribute", "marginalize"):
        merged[stage]["model"] = model
    # Evaluation is on the validation chromosomes of the fit, at the peaks
    # that predict uses, against the signals the model was trained on.
    for key, value in (
        ("chroms", fit.get("validation_chroms")),
        ("loci", merged["predict"].get("loci", fit.get("loci"))),
        ("signals", fit.get("signals")),
        ("controls", fit.get("controls")),
        ("sequences", fit.get("sequences")),
    ):
        if value is not None:
            merged["evaluate"].setdefault(key, value)
    for stage in ("predict", "attribute", "marginalize"):
        for key in ("sequences", "controls"):
            if key in fit:
                merged[stage].setdefault(key, fit[key])
    # Attributions are of the peaks that predict uses, unless said otherwise.
    for key in ("loci", "chroms"):
        if key in merged["predict"]:
            merged["attribute"].setdefault(key, merged["predict"][key])
    if "motifs" in merged["modisco_report"]:
        merged["marginalize"].setdefault("motifs", merged["modisco_report"]["motifs"])

    stages = {}
    for stage, stage_model in models.items():
        block = f"{stage}_parameters"
        try:
            stages[stage] = _validate(stage_model, merged[stage], source, prefix=block)
        except InputError:
            # An interpretation stage that the config does not mention is
            # off; one whose block is there must be complete.
            if stage in _CORE_STAGES or getattr(config, block) is not None:
                raise
    return stages


def model_path(config: StepConfig, results: str = "results") -> str:
    """The model file that predict, evaluate, attribute and marginalize use.

    The rule: if the pipeline's `model` key names a file that exists, that
    file is used and no model is trained. Otherwise (null, or a file that
    does not exist yet) the pipeline trains one and writes it to
    ``<results>/<name>/fit/<name>.torch``.
    """
    if config.model and Path(config.model).is_file():
        return config.model
    name = pipeline_name(config)
    return f"{results}/{name}/fit/{name}.torch"


def json_schema() -> dict:
    """A JSON Schema that accepts any config file of this project.

    Kept in ``workflow/schemas/config.schema.json`` (a test checks it is in sync).
    """
    from pydantic.json_schema import models_json_schema

    models = {**STEP_MODELS, **PIPELINE_MODELS}
    refs, schema = models_json_schema([(model, "validation") for model in models.values()],
                                      title="BPNet / ChromBPNet config")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["anyOf"] = [refs[(model, "validation")] for model in models.values()]
    return schema
