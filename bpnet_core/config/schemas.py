"""The pydantic models of every config: one per JSON of the parameter reference.

The single-step configs (`FitConfig`, `PredictConfig`, `EvaluateConfig`,
`AttributeConfig`, `ModiscoMotifsConfig`, `ModiscoReportConfig`,
`MarginalizeConfig`, `VariantsConfig`, `ChromBPNetFitConfig`), the stages only pipelines run
(bias model, QC and input stages) and the two pipelines
(`BPNetPipelineConfig`, `ChromBPNetPipelineConfig`), with the registries
`STEP_MODELS` and `PIPELINE_MODELS`.

Only the schema is here: how a pipeline's keys reach its stages is in
`bpnet_core.config.pipeline`, error messages in `bpnet_core.config.validation`.
"""

from __future__ import annotations

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
    create_model,
    model_validator,
)

from ..precision import Precision

Paths = Union[str, list[str]]
# The module of the models made by `create_model`: the package, whose name
# the JSON Schema's definitions carry (``bpnet_core__config__fit_parameters__1``).
_MODULE = "bpnet_core.config"


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
    precision: Precision = "auto"
    # Extension (bpnet-lite 1.1's keys): background regions, of which
    # `negative_ratio` x the number of peaks are drawn afresh each epoch; null:
    # every locus of `loci` in every epoch, as the parameter reference does.
    negatives: Optional[Paths] = None
    negative_ratio: NonNegativeFloat = 0.333
    # Extension: after training, refit the count head by least squares on the
    # training peaks (features fixed); see bpnet_core.train.refit_count_head.
    # The bias model of ChromBPNet is shifted instead, as the official recipe does.
    refit_count_head: bool = True
    # Extension: the learning rate over training: `constant` (`lr`), or
    # `cosine` (from `lr` to lr / 10 over `max_epochs`); see bpnet_core.train.learning_rate.
    lr_schedule: Literal["constant", "cosine"] = "constant"
    # Extension: validate and keep the exponential moving average of the
    # weights over about the last `validation_iter` steps (decay
    # 1 - 1 / validation_iter), not the last step's; see bpnet_core.train.WeightAverage.
    average_weights: bool = True

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
    return create_model(name, __base__=StepConfig, __module__=_MODULE,
                        **_optional_fields([model], exclude={"bias_fit_parameters"}))


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


BiasFitParameters = create_model("BiasFitParameters", __base__=StepConfig, __module__=_MODULE,
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
    precision: Precision = "auto"
    # Extension (bpnet-lite's key): predictions are the mean of the sequence's
    # and its reverse complement's (strands swapped back), as bpnet-lite's and
    # the official ChromBPNet's evaluations do.
    reverse_complement_average: bool = True


class EvaluateConfig(ModelStepConfig):
    """Evaluate: metrics of a model against observed `signals` at `loci`."""

    signals: list[str] = Field(min_length=1)
    performance_filename: str = "performance.tsv"
    precision: Precision = "auto"
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


class MotifHitsConfig(StepConfig):
    """Extension: motif instances of the TF-MoDISco patterns, called by Fi-NeMo (``motif_hits_parameters``).

    Keys are Fi-NeMo's (``finemo call-hits``, ``finemo report``); see
    `bpnet_core.motif_hits`. `region_width` and `modisco_region_width`
    default to TF-MoDISco's `window` in a pipeline.
    """

    region_width: PositiveInt = 400
    modisco_region_width: PositiveInt = 400
    global_lambda: PositiveFloat = 0.7
    motif_lambdas: Optional[dict[str, PositiveFloat]] = None
    cwm_trim_threshold: float = Field(default=0.3, ge=0, le=1)
    mode: Literal["pp", "ph", "hp", "hh"] = "pp"
    step_size_max: PositiveFloat = 3.0
    step_size_min: PositiveFloat = 0.08
    step_adjust: float = Field(default=0.7, gt=0, lt=1)
    convergence_tol: PositiveFloat = 0.0005
    max_steps: PositiveInt = 10000
    sqrt_transform: bool = False
    no_post_filter: bool = False
    finemo_report: bool = True
    output_folder: str = "motif_hits/"

    @model_validator(mode="after")
    def _check_widths(self):
        if self.region_width % 2:
            raise ValueError(f"region_width must be even (Fi-NeMo's regions are centred): {self.region_width}")
        return self


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
    precision: Precision = "auto"
    # Extension: each motif's consensus with its bases shuffled this many
    # times, inserted too, so that an effect of base composition alone (30 bp
    # of GC-rich sequence in an AT-rich genome) is not read as the motif's; 0: none.
    shuffled_controls: int = Field(default=3, ge=0)
    # Extension (bpnet-lite's key): predictions are the mean of the sequence's
    # and its reverse complement's (strands swapped back), as bpnet-lite's and
    # the official ChromBPNet's evaluations do.
    reverse_complement_average: bool = True


class VariantsConfig(ModelStepConfig):
    """Extension: variant effect scores (``bpnet-core variants``, ``variants_parameters``).

    Each variant of `variants` (VCF, VCF.gz, or TSV ``chrom pos ref alt
    [id]``, 1-based) on `chroms` (all when null) is checked against the
    FASTA and scored with `model` (several files: their mean, e.g. folds;
    a ChromBPNet file: its accessibility model, plus the full model's
    scores): log2 fold change of predicted counts, Jensen-Shannon distance
    of the profiles, the active allele's quantile among `n_peaks` peaks
    of `loci`, and empirical p-values against `n_shuffles` variants in
    dinucleotide-shuffled contexts. See `bpnet_core.variants`.
    """

    variants: str
    model: Paths
    # ChromBPNet: the full model(s) (bias included), scored too (columns full_*).
    full_model: Optional[Paths] = None
    n_peaks: PositiveInt = 10000
    n_shuffles: NonNegativeInt = 2000
    n_top: NonNegativeInt = 20
    random_state: Optional[int] = 0
    output_folder: str = "variants/"
    # Small effects are differences of two predictions: float32, unless asked.
    precision: Precision = "fp32"


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

    `negatives_per_peak` `in_window`-bp regions per peak of `loci`, on
    `chroms` (the fit's training and validation chromosomes), overlapping no
    peak's window and no region of `exclusion_lists`; see `bpnet_core.negatives`.
    """

    sequences: str
    loci: Paths
    chroms: list[str] = Field(min_length=1)
    in_window: PositiveInt = 2114
    exclusion_lists: Optional[list[str]] = None
    negatives_per_peak: PositiveInt = 2
    random_state: Optional[int] = 0
    output_filename: str


# Stages that make model inputs from raw files; each runs only when needed.
INPUT_STAGES = {"signals_bigwig": ReadsConfig, "controls_bigwig": ReadsConfig,
                "call_peaks": PeakCallingConfig, "negatives": NegativesConfig}


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
    "motif_hits": MotifHitsConfig,
    "marginalize": MarginalizeConfig,
    "variants": VariantsConfig,
}
_CHROMBPNET_STAGES = {"bias_fit": BiasFitConfig, "bias_qc": BiasQCConfig, **_BPNET_STAGES,
                      "fit": ChromBPNetFitConfig, "bias_free_qc": BiasFreeQCConfig}
STEP_MODELS: dict[str, type[StepConfig]] = {**_BPNET_STAGES, "chrombpnet_fit": ChromBPNetFitConfig}


class _BPNetPipeline(StepConfig):
    def to_params(self) -> dict[str, Any]:
        """The config as plain JSON data; a null `negatives` is left out, as it would read back as ChromBPNet's."""
        params = super().to_params()
        if params.get("negatives", "") is None:
            del params["negatives"]
        return params


class FoldConfig(StepConfig):
    """Extension: one fold of a fold ensemble (an item of a pipeline's ``folds`` list).

    The fold's model trains on `training_chroms`, selects its checkpoint on
    `validation_chroms` and is evaluated on `test_chroms`; the three must
    not overlap. See `bpnet_core.folds`.
    """

    training_chroms: list[str] = Field(min_length=1)
    validation_chroms: list[str] = Field(min_length=1)
    test_chroms: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_disjoint(self):
        keys = ("training_chroms", "validation_chroms", "test_chroms")
        for i, first in enumerate(keys):
            for second in keys[i + 1:]:
                overlap = [c for c in getattr(self, first) if c in getattr(self, second)]
                if overlap:
                    raise ValueError(f"{first} and {second} overlap: {', '.join(overlap)}; "
                                     "a fold's three chromosome sets must be disjoint")
        return self


# Extension: a fold ensemble, one model per fold (`bpnet_core.config.pipeline.fold_splits`):
# a number of folds made by balancing chromosome lengths, or the folds themselves.
Folds = Optional[Union[int, list[FoldConfig]]]


def _pipeline_model(name: str, stages: dict[str, type[StepConfig]], base: type[StepConfig]) -> type[StepConfig]:
    fields = _optional_fields([*stages.values(), ReadsConfig, PeakCallingConfig, NegativesConfig],
                              exclude=_OUTPUT_KEYS | {"bias_fit_parameters", "peaks", "role", "reads", "bigwigs",
                                                      "full_model"})
    # `model` names the model to use instead of fitting one (see `pipeline.model_paths`).
    for stage, model in stages.items():
        fields[f"{stage}_parameters"] = (Optional[_partial(model, f"{stage}_parameters")], None)
    fields["folds"] = (Folds, None)
    return create_model(name, __base__=base, __module__=_MODULE, **fields)


BPNetPipelineConfig = _pipeline_model("BPNetPipelineConfig", _BPNET_STAGES, _BPNetPipeline)
ChromBPNetPipelineConfig = _pipeline_model("ChromBPNetPipelineConfig", _CHROMBPNET_STAGES, StepConfig)
PIPELINE_MODELS: dict[str, type[StepConfig]] = {
    "bpnet_pipeline": BPNetPipelineConfig,
    "chrombpnet_pipeline": ChromBPNetPipelineConfig,
}
