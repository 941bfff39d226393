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
import re
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
    PrivateAttr,
    ValidationError,
    create_model,
    model_validator,
)

from .errors import InputError

Paths = Union[str, list[str]]


# Keys that say how a stage runs, not what it computes.
RUNTIME_KEYS = frozenset({"device", "verbose", "fast_path"})


class StageParams(dict):
    """A stage config as Snakemake params: changing a runtime key reruns nothing.

    Snakemake reruns a job when the ``repr`` of one of its params changes;
    this dict's ``repr`` leaves out `RUNTIME_KEYS`, so that turning on
    ``verbose`` or moving to another device keeps every result, while the
    script still receives every key.
    """

    def __repr__(self) -> str:
        return repr({k: v for k, v in self.items() if k not in RUNTIME_KEYS})


class StepConfig(BaseModel):
    """Base of every config: unknown keys are errors, defaults are checked."""

    model_config = ConfigDict(extra="forbid", validate_default=True)
    # Key -> where the user wrote its value (`pipeline_stages` fills it in).
    _origins: dict[str, str] = PrivateAttr(default_factory=dict)

    def to_params(self) -> dict[str, Any]:
        """The config as plain JSON data with sorted keys."""
        return dict(sorted(self.model_dump(mode="json").items()))

    def key_name(self, key: str) -> str:
        """The config key as the user wrote it, for messages.

        In a pipeline a stage's value may come from the top level
        (``loci``), its own block (``predict_parameters.loci``) or another
        stage's (evaluate's ``loci`` are ``predict_parameters.loci``).
        """
        return self._origins.get(key, key)


# Extension: "bf16" computes the model under bfloat16 autocast (see
# `bpnet_core.models.set_compute`); DeepLIFT/SHAP always runs in float32.
Precision = Literal["fp32", "bf16"]


class WindowedConfig(StepConfig):
    """Keys shared by every step that runs a model over genomic windows."""

    batch_size: PositiveInt = 64
    in_window: PositiveInt = 2114
    out_window: PositiveInt = 1000
    verbose: bool = False
    # Extension of the reference: "auto" picks the GPU when there is one.
    device: str = "auto"
    # Extension: compute only the positions the outputs depend on, in the
    # fastest memory layout (`BPNet.forward_fast`); false runs the
    # reference computation. The outputs agree to float rounding.
    fast_path: bool = True

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
    precision: Precision = "fp32"
    # Extension (bpnet-lite 1.1's keys): background regions, of which
    # `negative_ratio` x the number of peaks are drawn afresh each epoch; null:
    # every locus of `loci` in every epoch, as the parameter reference does.
    negatives: Optional[Paths] = None
    negative_ratio: NonNegativeFloat = 0.333

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


class BiasFitConfig(FitConfig):
    """The bias step of ChromBPNet Fit: a BPNet of the enzyme's sequence bias.

    Trained on the background regions of `loci` whose total counts are at
    most `beta` x the 1st percentile of total counts in `peaks` (the
    official recipe), then its count output is shifted to match the mean
    observed log counts of those regions.
    """

    name: str = "chrombpnet"
    n_layers: NonNegativeInt = 4
    alpha: NonNegativeFloat = 10.0
    beta: PositiveFloat = 0.5
    # The peaks whose low count quantile sets the threshold (the fit's loci).
    peaks: Paths


BiasFitParameters = create_model("BiasFitParameters", __base__=StepConfig,
                                 **_optional_fields([BiasFitConfig], exclude={"peaks"}))


class ChromBPNetFitConfig(FitConfig):
    """ChromBPNet Fit: a frozen bias model plus an accessibility model."""

    name: str = "chrombpnet"
    alpha: NonNegativeFloat = 10.0
    beta: PositiveFloat = 0.5
    negatives: Optional[Paths] = None
    bias_model: Optional[str] = None
    accessibility_model: Optional[str] = None
    bias_fit_parameters: Optional[BiasFitParameters] = None
    # Extension: background regions drawn afresh each epoch, as a fraction
    # of the peaks (the official recipe's 0.1).
    negative_ratio: NonNegativeFloat = 0.1

    @model_validator(mode="after")
    def _check_chrombpnet(self):
        if self.controls:
            raise ValueError("controls: ChromBPNet models take no control tracks; use null")
        if self.negatives is None:
            raise ValueError("negatives: ChromBPNet needs background regions (a BED file) "
                             "to train the bias model and to sample with the peaks")
        return self


def bias_fit_config(config: ChromBPNetFitConfig, source: str = "<config>") -> BiasFitConfig:
    """The bias step of a ChromBPNet Fit config.

    Its keys, overridden by the non-null keys of `bias_fit_parameters`,
    with 4 layers unless said otherwise and `loci` the `negatives`.
    """
    top = {key: value for key, value in config.model_dump(exclude_none=True).items()
           if key in BiasFitConfig.model_fields and key != "n_layers"}
    block = config.bias_fit_parameters
    nested = block.model_dump(exclude_none=True) if block is not None else {}
    merged = {**top, "loci": config.negatives, "peaks": config.loci, **nested}
    return _validate(BiasFitConfig, merged, source, prefix="bias_fit_parameters")


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
    precision: Precision = "fp32"
    # Extension (bpnet-lite's key): predictions are the mean of the sequence's
    # and its reverse complement's (strands swapped back), as bpnet-lite's and
    # the official ChromBPNet's evaluations do.
    reverse_complement_average: bool = True


class EvaluateConfig(ModelStepConfig):
    """Evaluate: metrics of a model against observed `signals` at `loci`."""

    signals: list[str] = Field(min_length=1)
    performance_filename: str = "performance.tsv"
    precision: Precision = "fp32"
    # Extension (bpnet-lite's key): predictions are the mean of the sequence's
    # and its reverse complement's (strands swapped back), as bpnet-lite's and
    # the official ChromBPNet's evaluations do.
    reverse_complement_average: bool = True


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
    precision: Precision = "fp32"
    # Extension: each motif's consensus with its bases shuffled this many
    # times, inserted too, so that an effect of base composition alone (30 bp
    # of GC-rich sequence in an AT-rich genome) is not read as the motif's; 0: none.
    shuffled_controls: int = Field(default=3, ge=0)
    # Extension (bpnet-lite's key): predictions are the mean of the sequence's
    # and its reverse complement's (strands swapped back), as bpnet-lite's and
    # the official ChromBPNet's evaluations do.
    reverse_complement_average: bool = True


class BiasQCConfig(WindowedConfig):
    """Extension: quality control of a ChromBPNet bias model (``bias_qc_parameters``).

    The bias model's profile contributions at up to `n_loci` peaks go
    through TF-MoDISco and are matched against `motifs`; a pattern whose
    best significant match (q < `max_qvalue`) is not an enzyme-bias motif
    (a name starting with TN5 or DNASE, as in the chrombpnet motif file)
    flags the model, as do count Pearson correlations at or below the
    official bounds (0 on background, -0.3 on peaks, validation
    chromosomes). A flagged model stops the pipeline unless `accept`.
    """

    model: str
    sequences: str
    loci: Paths
    negatives: Paths
    signals: list[str] = Field(min_length=1)
    chroms: list[str]
    motifs: Optional[str] = None
    n_loci: PositiveInt = 30000
    n_shuffles: PositiveInt = 20
    n_seqlets: PositiveInt = 100000
    window: PositiveInt = 400
    max_qvalue: PositiveFloat = 0.05
    random_state: Optional[int] = 0
    accept: bool = False


class BiasFreeQCConfig(WindowedConfig):
    """Extension: is the accessibility model bias-free? (``bias_free_qc_parameters``).

    Each enzyme-bias motif of `motifs` (TN5*, DNASE*) is inserted into up
    to `n_loci` background regions (`loci`, on `chroms`) and footprinted
    with the accessibility `model` and, for contrast, the `full_model`
    (see `bpnet_core.bias_free_qc`). The mean of the footprints' maxima at
    or above `max_footprint_fold` times a flat profile (official: 0.003 at
    1000 bp, i.e. 3), or a TF-MoDISco pattern of the accessibility model
    whose best match (q < `max_qvalue`) is an enzyme motif, marks the
    model as not bias-free: reported in the QC, the dataset report and the
    batch summary; with `strict`, the stage fails too.
    """

    model: str
    full_model: str
    sequences: str
    loci: Paths
    chroms: list[str]
    motifs: str
    n_loci: PositiveInt = 200
    max_footprint_fold: PositiveFloat = 3.0
    max_qvalue: PositiveFloat = 0.05
    random_state: Optional[int] = 0
    strict: bool = False


class ReadsConfig(StepConfig):
    """Extension: `signals` or `controls` given as reads files, counted into bigWigs.

    `reads` (BAM/SAM/CRAM, fragment TSV or tagAlign files) are pooled and
    their 5' ends counted at base resolution into `bigwigs`: plus and minus
    strand when `stranded`, else one track of both. `read_shift` moves the
    plus / minus ends by so many bp; null: (0, 0) stranded, and unstranded
    the ATAC-seq Tn5 shift (+4, -4) for reads, (0, +1) for fragment files
    (already shifted by +4/-5 by their makers), as in the official
    ChromBPNet preprocessing.
    """

    sequences: str
    # The pipeline key the reads were given as.
    role: Literal["signals", "controls"]
    reads: list[str] = Field(min_length=1)
    stranded: bool
    read_shift: Optional[list[int]] = Field(default=None, min_length=2, max_length=2)
    bigwigs: list[str] = Field(min_length=1, max_length=2)


class PeakCallingConfig(StepConfig):
    """Extension: peaks called by MACS3 from the reads of `signals` when `loci` is absent.

    Stranded (ChIP-seq-like) data: MACS3's own fragment-size model, with
    `controls` as its control; unstranded (ATAC/DNase): cut sites smoothed
    over 150 bp (``--nomodel --shift -75 --extsize 150``, as ENCODE's ATAC
    pipeline). `genome_size` is MACS3's ``-g`` (a number or hs/mm/ce/dm);
    null: the FASTA's non-N bases.
    """

    sequences: str
    signals: list[str] = Field(min_length=1)
    controls: Optional[list[str]] = None
    stranded: bool
    peak_qvalue: float = Field(default=0.01, gt=0, lt=1)
    genome_size: Optional[Union[PositiveFloat, Literal["hs", "mm", "ce", "dm"]]] = None
    output_filename: str


class NegativesConfig(StepConfig):
    """Extension: GC-matched background regions when a ChromBPNet config has no `negatives`.

    One `in_window`-bp region per peak of `loci`, on `chroms` (the fit's
    training and validation chromosomes), overlapping no peak's window and
    no region of `exclusion_lists`; see `bpnet_core.negatives`.
    """

    sequences: str
    loci: Paths
    chroms: list[str] = Field(min_length=1)
    in_window: PositiveInt = 2114
    exclusion_lists: Optional[list[str]] = None
    random_state: Optional[int] = 0
    output_filename: str


# Stages that make model inputs from raw files; each runs only when needed.
INPUT_STAGES = {"signals_bigwig": ReadsConfig, "controls_bigwig": ReadsConfig,
                "call_peaks": PeakCallingConfig, "negatives": NegativesConfig}
# Pipeline keys that only these stages read.
_INPUT_KEYS = {"stranded", "read_shift", "peak_qvalue", "genome_size", "exclusion_lists"}


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
_CHROMBPNET_STAGES = {"bias_fit": BiasFitConfig, "bias_qc": BiasQCConfig, **_BPNET_STAGES,
                      "fit": ChromBPNetFitConfig, "bias_free_qc": BiasFreeQCConfig}
STEP_MODELS: dict[str, type[StepConfig]] = {**_BPNET_STAGES, "chrombpnet_fit": ChromBPNetFitConfig}


def _pipeline_model(name: str, stages: dict[str, type[StepConfig]]) -> type[StepConfig]:
    fields = _optional_fields([*stages.values(), ReadsConfig, PeakCallingConfig, NegativesConfig],
                              exclude=_OUTPUT_KEYS | {"bias_fit_parameters", "peaks", "role", "reads", "bigwigs",
                                                      "full_model"})
    # `model` names the model to use instead of fitting one (see model_path).
    for stage, model in stages.items():
        fields[f"{stage}_parameters"] = (Optional[_partial(model, f"{stage}_parameters")], None)
    return create_model(name, __base__=StepConfig, **fields)


BPNetPipelineConfig = _pipeline_model("BPNetPipelineConfig", _BPNET_STAGES)
ChromBPNetPipelineConfig = _pipeline_model("ChromBPNetPipelineConfig", _CHROMBPNET_STAGES)

# Defaults of a pipeline block that win over the top level (the reference's
# bias model is a 4-layer BPNet whatever the accessibility model's depth).
_BLOCK_DEFAULTS = {"bias_fit": {"n_layers": 4}}

# Keys that make a config a ChromBPNet one. BPNet configs may name background
# `negatives` too (bpnet-lite 1.1's key); `"negatives": null` (draw them) is
# ChromBPNet's alone.
_CHROMBPNET_KEYS = {"bias_model", "accessibility_model", "beta", "bias_fit_parameters",
                    "bias_qc_parameters", "bias_free_qc_parameters"}


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


def _key_path(loc: tuple, prefix: str, origins: dict[str, str]) -> str:
    """The dotted key of an error at `loc`, starting where the user wrote it."""
    if loc and str(loc[0]) in origins:
        return ".".join([origins[str(loc[0])], *(str(p) for p in loc[1:])])
    return ".".join(str(p) for p in ((prefix,) if prefix else ()) + loc)


def _written_keys(msg: str, model: type[BaseModel], prefix: str, origins: dict[str, str]) -> str:
    """For a check of several keys: the keys it names, where the user wrote them."""
    named = [key for key in model.model_fields if re.search(rf"\b{key}\b", msg)]
    written = list(dict.fromkeys(origins[key] for key in named if key in origins))
    return ", ".join(written) or prefix


def _describe(loc: tuple, error: dict, model: type[BaseModel], prefix: str, expected: list[str],
              origins: dict[str, str]) -> str:
    key = _key_path(loc, prefix, origins)
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
        if not loc:
            key = _written_keys(msg, model, prefix, origins)
        return f"{key}: {msg}" if key else msg
    return f"key '{key}': {msg} (got {got})"


def _problems(err: ValidationError, model: type[BaseModel], prefix: str = "",
              origins: dict[str, str] | None = None) -> list[str]:
    """One line per offending key of a validation error."""
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
    return [_describe(loc, error, model, prefix, types, origins or {})
            for loc, (error, types) in grouped.items()]


def problems_error(problems: list[str], source: str = "") -> InputError:
    """One `InputError` listing `problems` (duplicates once), prefixed by `source`."""
    problems = list(dict.fromkeys(problems))
    where = f"{source}: " if source else ""
    if len(problems) == 1:
        return InputError(where + problems[0])
    return InputError(f"{where}{len(problems)} problems:\n  - " + "\n  - ".join(problems))


def _check(model: type[StepConfig], data: dict, prefix: str = "",
           origins: dict[str, str] | None = None) -> tuple[StepConfig | None, list[str]]:
    """`model` validated from `data`, or None and one line per problem."""
    try:
        config = model.model_validate(data)
    except ValidationError as err:
        return None, _problems(err, model, prefix, origins)
    config._origins = dict(origins or {})
    return config, []


def _validate(model: type[StepConfig], data: dict, source: str, prefix: str = "",
              origins: dict[str, str] | None = None):
    config, problems = _check(model, data, prefix, origins)
    if problems:
        raise problems_error(problems, source)
    return config


def as_step_config(model: type[StepConfig], config: StepConfig | dict, source: str = "") -> StepConfig:
    """`config` as a `model`: validated from a dict (errors as one `InputError`), or as given."""
    return config if isinstance(config, model) else _validate(model, dict(config), source)


# --------------------------------------------------------------------------
# Loading


def read_config(path: str | Path) -> dict:
    """Read a config file as Snakemake's ``--configfile`` does: JSON, else YAML.

    So the parameter reference's examples (JSON with ``#`` comments, which
    YAML reads) and YAML batch configs are accepted by the command line
    exactly when the workflow accepts them.

    Raises
    ------
    InputError
        File missing or unreadable, neither JSON nor YAML (the JSON error's
        line and column for a ``.json`` file), or not a mapping.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"{path}: config file not found (looked for {path.resolve()})") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read config file ({err.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as json_error:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as yaml_error:
            mark = getattr(yaml_error, "problem_mark", None)
            problem = getattr(yaml_error, "problem", None) or str(yaml_error)
            # JSON with # comments is read as YAML, where a tab cannot indent.
            hint = ("; JSON with # comments is read as YAML, which does not allow tabs: indent "
                    "with spaces" if "\\t" in problem else "")
            if mark is not None and (hint or path.suffix.lower() not in (".json", "")):
                raise InputError(f"{path}: not valid YAML at line {mark.line + 1}, column "
                                 f"{mark.column + 1}: {problem}{hint}") from None
            raise InputError(f"{path}: not valid JSON at line {json_error.lineno}, column "
                             f"{json_error.colno}: {json_error.msg} (nor YAML)") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a config is a mapping of keys ({{...}}), not {type(data).__name__}")
    return data


def detect_kind(data: dict) -> str:
    """Which config a JSON object is, from its keys.

    Returns one of the keys of `STEP_MODELS`, or ``"bpnet_pipeline"`` /
    ``"chrombpnet_pipeline"``.
    """
    chrombpnet = bool(_CHROMBPNET_KEYS & data.keys()) or ("negatives" in data and data["negatives"] is None)
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
    if "model" in data and data.get("signals") and not {"profile_filename", "counts_filename"} & data.keys():
        return "evaluate"  # a model and the observed signals to compare it with
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
    """Read (`read_config`) and validate a config file (see `parse_config`)."""
    return parse_config(read_config(path), source=str(path), kind=kind)


# --------------------------------------------------------------------------
# Pipelines


def is_chrombpnet(config: StepConfig) -> bool:
    return isinstance(config, ChromBPNetPipelineConfig)


def pipeline_name(config: StepConfig) -> str:
    return config.name or ("chrombpnet" if is_chrombpnet(config) else "bpnet")


def _stage_models(config: StepConfig) -> dict[str, type[StepConfig]]:
    return _CHROMBPNET_STAGES if is_chrombpnet(config) else _BPNET_STAGES


def _merge(config: StepConfig, stage: str) -> tuple[dict, dict[str, str]]:
    """A stage's values, top level < block defaults < its block (non-null only).

    Returns
    -------
    values : dict
    origins : dict
        Key -> where the user wrote it (``loci``, ``fit_parameters.loci``).
    """
    model = _stage_models(config)[stage]
    block_name = f"{stage}_parameters"
    top = {
        key: value
        for key, value in config.model_dump(exclude_none=True).items()
        if key in model.model_fields and not key.endswith("_parameters") and key not in _OUTPUT_KEYS
    }
    block = getattr(config, block_name)
    nested = block.model_dump(exclude_none=True) if block is not None else {}
    defaults = _BLOCK_DEFAULTS.get(stage, {})
    origins = {**{key: key for key in top}, **{key: f"{block_name}.{key}" for key in (*defaults, *nested)}}
    return {**top, **defaults, **nested}, origins


# Stages that always run; interpretation stages run when their block is in
# the config, or the block of a stage that reads their output is.
_CORE_STAGES = {"bias_fit", "bias_qc", "fit", "predict", "evaluate"}
_READS_FROM = {"modisco_report": "modisco_motifs", "modisco_motifs": "attribute"}
# Runs whenever the config gives all it needs (its motif database).
_WHEN_COMPLETE = {"bias_free_qc"}
# Stages that run a model, and the stage that trains it (for its windows).
_MODEL_READERS = {"predict": "fit", "evaluate": "fit", "attribute": "fit", "marginalize": "fit",
                  "bias_free_qc": "fit", "bias_qc": "bias_fit"}


def planned_stages(config: StepConfig) -> list[str]:
    """The stages of a pipeline that run, in order (before any input stage)."""
    stages = _stage_models(config)
    wanted = {stage for stage in stages
              if stage in _CORE_STAGES or getattr(config, f"{stage}_parameters") is not None}
    for stage, reads in _READS_FROM.items():  # ordered: report brings motifs brings attribute
        if stage in wanted:
            wanted.add(reads)
    return [stage for stage in stages if stage in wanted or stage in _WHEN_COMPLETE]


def pipeline_stages(config: StepConfig, source: str = "<config>") -> dict[str, StepConfig]:
    """The effective config of every stage of a pipeline.

    Parameters
    ----------
    config : BPNetPipelineConfig or ChromBPNetPipelineConfig
    source : str
        The config's file name, for messages.

    Returns
    -------
    dict
        Stage name -> validated step config. Stages: ``fit``, ``predict``,
        ``evaluate`` (and ``bias_fit``, ``bias_qc`` for ChromBPNet) always;
        ``attribute``, ``modisco_motifs``, ``modisco_report`` and
        ``marginalize`` when their ``*_parameters`` block is in the config
        (``{}`` for the defaults), or the block of a stage that reads their
        output is (TF-MoDISco reads the attributions); ``bias_free_qc``
        when there is a motif database. Model files follow `model_paths`:
        evaluate uses ``model`` (for ChromBPNet the full model, which
        predicts the observed signal), the other stages the model to
        interpret (for ChromBPNet the bias-free accessibility model). A
        stage that runs a model takes the windows of the stage that trains
        it unless it sets its own.

    Raises
    ------
    InputError
        Listing the problems of every stage at once, each under the key
        where the user wrote it.
    """
    config, inputs = prepare_inputs(config, source=source)
    paths = model_paths(config)
    trained = trained_model_paths(config)
    models = _stage_models(config)
    merged, origin = {}, {}
    for stage in models:
        merged[stage], origin[stage] = _merge(config, stage)

    def inherit(stage: str, key: str, value: Any, where: str, replace: bool = False) -> None:
        """`stage`'s `key` is `value`, written by the user at `where`, unless it has its own."""
        if value is None or (key in merged[stage] and not replace):
            return
        merged[stage][key] = value
        origin[stage][key] = where

    def copy(stage: str, key: str, from_stage: str, from_key: str | None = None) -> None:
        """`stage`'s `key` defaults to `from_stage`'s `from_key`, keeping where it was written."""
        from_key = from_key or key
        inherit(stage, key, merged[from_stage].get(from_key),
                origin[from_stage].get(from_key, f"{from_stage}_parameters.{from_key}"))

    def on_background(stage: str) -> None:
        """`stage` reads the `negatives`, not the top level's peaks, unless its block names loci."""
        if origin[stage].get("loci") in (None, "loci"):
            inherit(stage, "loci", config.negatives, "negatives", replace=True)

    chrombpnet = is_chrombpnet(config)
    readout = "accessibility_model" if chrombpnet else "model"
    for stage in ("predict", "attribute", "marginalize"):
        # A stage's own `model` (e.g. the full ChromBPNet model for predict) wins.
        own = origin[stage].get("model") == f"{stage}_parameters.model"
        inherit(stage, "model", paths[readout], readout, replace=not own)
    inherit("evaluate", "model", paths["model"], "model", replace=True)
    if chrombpnet:
        # ChromBPNet adds the two models' outputs: the same windows, the
        # same data and chromosome split.
        for key in ("in_window", "out_window", "training_chroms", "validation_chroms", "sequences",
                    "signals"):
            copy("bias_fit", key, "fit")
        on_background("bias_fit")
        copy("bias_fit", "peaks", "fit", "loci")
        inherit("fit", "bias_model", paths["bias_model"], "bias_model", replace=True)
        inherit("fit", "accessibility_model", paths["accessibility_model"], "accessibility_model",
                replace=True)
        inherit("bias_qc", "model", paths["bias_model"], "bias_model", replace=True)
        inherit("bias_qc", "negatives", config.negatives, "negatives")
        for key, from_key in (("loci", "loci"), ("signals", "signals"), ("sequences", "sequences"),
                              ("chroms", "validation_chroms")):
            copy("bias_qc", key, "fit", from_key)
        copy("bias_qc", "motifs", "modisco_report")
        # The accessibility model's check: footprints on the background
        # regions of the validation chromosomes, motifs of the report's database.
        inherit("bias_free_qc", "model", paths["accessibility_model"], "accessibility_model", replace=True)
        inherit("bias_free_qc", "full_model", paths["model"], "model", replace=True)
        on_background("bias_free_qc")
        for key, from_key in (("sequences", "sequences"), ("chroms", "validation_chroms")):
            copy("bias_free_qc", key, "fit", from_key)
        copy("bias_free_qc", "motifs", "modisco_report")
    # Motifs are inserted into background, not into peaks that hold motifs already.
    on_background("marginalize")  # a no-op without negatives
    # Evaluation is on the validation chromosomes of the fit, at the peaks
    # that predict uses, against the signals the model was trained on.
    copy("evaluate", "chroms", "fit", "validation_chroms")
    copy("evaluate", "loci", "predict" if "loci" in merged["predict"] else "fit", "loci")
    for key in ("signals", "controls", "sequences"):
        copy("evaluate", key, "fit")
    for stage in ("predict", "attribute", "marginalize"):
        for key in ("sequences", "controls"):
            copy(stage, key, "fit")
    # Attributions are of the peaks that predict uses, unless said otherwise.
    for key in ("loci", "chroms"):
        copy("attribute", key, "predict")
    copy("marginalize", "motifs", "modisco_report")
    # A model maps in_window -> out_window as it was trained.
    for stage, trainer in _MODEL_READERS.items():
        if stage in models:
            for key in ("in_window", "out_window"):
                copy(stage, key, trainer)

    problems, stages = [], {}
    planned = planned_stages(config)
    for stage in planned:
        block = f"{stage}_parameters"
        step, step_problems = _check(models[stage], merged[stage], prefix=block, origins=origin[stage])
        if step is not None:
            stages[stage] = step
        elif not (stage in _WHEN_COMPLETE and getattr(config, block) is None):
            problems.extend(step_problems)  # else: not asked for, and not all it needs is there
    problems.extend(_window_problems(stages, trained))
    if problems:
        raise problems_error(problems, source)
    return {**inputs, **stages}


def _trimming(step: StepConfig) -> int:
    return step.in_window - step.out_window


def _window_problems(stages: dict[str, StepConfig], trained: dict[str, str]) -> list[str]:
    """Stages that would run a model the pipeline trains with windows it does not map."""
    problems = []
    if "bias_fit" in stages and "fit" in stages and _trimming(stages["bias_fit"]) != _trimming(stages["fit"]):
        fit, bias = stages["fit"], stages["bias_fit"]
        problems.append(
            f"{bias.key_name('in_window')}, {bias.key_name('out_window')}: the bias model would map "
            f"{bias.in_window} -> {bias.out_window} bp, the accessibility model {fit.in_window} -> "
            f"{fit.out_window} bp ({fit.key_name('in_window')}, {fit.key_name('out_window')}); "
            "ChromBPNet adds their outputs, so in_window - out_window must be the same")
    for stage, trainer in _MODEL_READERS.items():
        step, fit = stages.get(stage), stages.get(trainer)
        if step is None or fit is None or _trimming(step) == _trimming(fit):
            continue
        if not {getattr(step, "model", None), getattr(step, "full_model", None)} & set(trained.values()):
            continue  # a given model file: its windows are checked when it is read
        problems.append(
            f"{step.key_name('in_window')}, {step.key_name('out_window')}: {stage} would run the model "
            f"that {trainer} trains with {step.in_window} -> {step.out_window} bp, but that model maps "
            f"{fit.in_window} -> {fit.out_window} bp ({fit.key_name('in_window')}, "
            f"{fit.key_name('out_window')}); give {stage} the same in_window - out_window, or set "
            "the windows once at the top level")
    return problems


def _validate_set(model: type[StepConfig], data: dict, source: str, origins: dict[str, str]):
    """`model` from the non-null values of `data` (the others take their defaults)."""
    return _validate(model, {k: v for k, v in data.items() if v is not None}, source, origins=origins)


def _reads_lists(config: StepConfig, key: str):
    """Where `key` (signals or controls) is set: (block name or None, its value), top level first."""
    places = [(None, getattr(config, key))]
    for stage in _stage_models(config):
        block = getattr(config, f"{stage}_parameters")
        if block is not None and key in type(block).model_fields:
            places.append((stage, getattr(block, key)))
    return [(where, value) for where, value in places if value]


def prepare_inputs(config: StepConfig, source: str = "<config>",
                   results: str = "results") -> tuple[StepConfig, dict[str, StepConfig]]:
    """Raw inputs of a pipeline: the stages that turn them into model inputs.

    - `signals` / `controls` naming reads files (BAM/SAM/CRAM, fragments,
      tagAlign; see `bpnet_core.reads`) at the top level or in
      ``fit_parameters``: stage ``signals_bigwig`` / ``controls_bigwig``
      counts them into ``<results>/<name>/inputs/<key>[.plus|.minus].bw``.
    - no `loci` for the fit: stage ``call_peaks`` calls peaks with MACS3
      from the signal reads into ``inputs/peaks.narrowPeak``.
    - ChromBPNet with no `negatives`: stage ``negatives`` draws GC-matched
      background regions into ``inputs/negatives.bed``.

    Returns
    -------
    config : StepConfig
        A copy of the pipeline naming those files instead.
    stages : dict
        Input stage -> its step config, for the stages needed.

    Raises
    ------
    InputError
        For lists mixing reads and bigWigs, reads given only to some
        stages, or no `loci` and no reads to call peaks from.
    """
    from .reads import is_reads as _is_reads

    def is_reads(path: str, key: str) -> bool:
        # By content where the file exists, else by suffix (`reads.reads_format`).
        try:
            return _is_reads(path, key)
        except InputError as err:
            raise InputError(f"{source}: {err}") from None

    folder = f"{results}/{pipeline_name(config)}/inputs"
    fit, fit_origin = _merge(config, "fit")
    chrombpnet = is_chrombpnet(config)
    stranded = config.stranded if config.stranded is not None else not chrombpnet
    top, blocks = {}, {}
    stages: dict[str, StepConfig] = {}
    raw: dict[str, list[str]] = {}
    for key in ("signals", "controls"):
        fit_paths = fit.get(key) or []
        bigwigs = ([f"{folder}/{key}.plus.bw", f"{folder}/{key}.minus.bw"] if stranded
                   else [f"{folder}/{key}.bw"])
        for where, paths in _reads_lists(config, key):
            name = f"{where}_parameters.{key}" if where else key
            n_reads = sum(is_reads(path, name) for path in paths)
            if n_reads and n_reads < len(paths):
                raise InputError(f"{source}: key '{name}': mixes reads files and bigWigs; give "
                                 "either bigWigs (one per track) or reads files (pooled)")
            if not n_reads:
                continue
            if paths != fit_paths:
                raise InputError(f"{source}: key '{name}': reads files are converted for the fit's "
                                 f"{key} only; give them at the top level or in fit_parameters")
            if where is None:
                top[key] = bigwigs
            else:
                blocks.setdefault(where, {})[key] = bigwigs
        if any(is_reads(path, key) for path in fit_paths):
            raw[key] = list(fit_paths)
            stages[f"{key}_bigwig"] = _validate_set(ReadsConfig, {
                "sequences": fit.get("sequences"), "role": key, "reads": fit_paths, "stranded": stranded,
                "read_shift": config.read_shift, "bigwigs": bigwigs}, source,
                {"reads": fit_origin.get(key, key), "sequences": fit_origin.get("sequences", "sequences")})
    if not fit.get("loci"):
        if "signals" not in raw:
            raise InputError(f"{source}: missing required key 'loci': give peaks (BED or narrowPeak), "
                             "or reads files (BAM, fragments, tagAlign) in 'signals' to call peaks from")
        top["loci"] = f"{folder}/peaks.narrowPeak"
        stages["call_peaks"] = _validate_set(PeakCallingConfig, {
            "sequences": fit.get("sequences"), "signals": raw["signals"], "controls": raw.get("controls"),
            "stranded": stranded, "peak_qvalue": config.peak_qvalue, "genome_size": config.genome_size,
            "output_filename": top["loci"]}, source,
            {"signals": fit_origin.get("signals", "signals"), "controls": fit_origin.get("controls", "controls"),
             "sequences": fit_origin.get("sequences", "sequences")})
    if chrombpnet and config.negatives is None:
        top["negatives"] = f"{folder}/negatives.bed"
        stages["negatives"] = _validate_set(NegativesConfig, {
            "sequences": fit.get("sequences"), "loci": fit.get("loci") or top["loci"],
            "chroms": [*fit.get("training_chroms", []), *fit.get("validation_chroms", [])],
            "in_window": fit.get("in_window"), "exclusion_lists": config.exclusion_lists,
            "random_state": fit.get("random_state"), "output_filename": top["negatives"]}, source,
            {"loci": fit_origin.get("loci", "loci"), "sequences": fit_origin.get("sequences", "sequences")})
    if not stages:
        return config, stages
    updates = dict(top)
    for stage, values in blocks.items():
        updates[f"{stage}_parameters"] = getattr(config, f"{stage}_parameters").model_copy(update=values)
    return config.model_copy(update=updates), stages


def input_files(stages: dict[str, StepConfig]) -> set[str]:
    """The files that the input stages among `stages` write (see `prepare_inputs`)."""
    files = set()
    for stage, step in stages.items():
        if stage in INPUT_STAGES:
            files.update(step.bigwigs if isinstance(step, ReadsConfig) else [step.output_filename])
    return files


def model_paths(config: StepConfig, results: str = "results") -> dict[str, str]:
    """The model files of a pipeline: given ones that exist, else trained ones.

    The rule, for each of the pipeline's model keys: if it names a file
    that exists, that file is used as is; otherwise (null, or a file that
    does not exist yet) the pipeline writes one under ``<results>/<name>/``.

    - BPNet: ``model`` -> ``fit/<name>.torch``.
    - ChromBPNet: ``bias_model`` -> ``bias_fit/<name>.bias.torch``;
      ``model`` (full: frozen bias + accessibility) -> ``fit/<name>.torch``;
      ``accessibility_model`` -> ``fit/<name>.accessibility.torch``. A given
      full model skips the fit and its accessibility part is extracted; a
      given accessibility model with no full model is combined with the
      bias model instead of fitting.

    Returns
    -------
    dict
        ``model``, plus ``bias_model`` and ``accessibility_model`` for ChromBPNet.
    """
    return {key: (given if (given := getattr(config, key)) and Path(given).is_file() else path)
            for key, path in trained_model_paths(config, results).items()}


def trained_model_paths(config: StepConfig, results: str = "results") -> dict[str, str]:
    """Where the pipeline writes each model it trains (see `model_paths`)."""
    name = pipeline_name(config)
    trained = {"model": f"{results}/{name}/fit/{name}.torch"}
    if is_chrombpnet(config):
        trained["bias_model"] = f"{results}/{name}/bias_fit/{name}.bias.torch"
        trained["accessibility_model"] = f"{results}/{name}/fit/{name}.accessibility.torch"
    return trained


def model_path(config: StepConfig, results: str = "results") -> str:
    """The (full) model file of a pipeline; see `model_paths`."""
    return model_paths(config, results)["model"]


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
