"""How a pipeline's keys reach its stages, which stages run, and the files it writes.

A pipeline's top-level keys are the defaults of its nested ``*_parameters``
blocks: for each stage, the effective config is the stage's own defaults,
overridden by the top-level keys that the stage knows, overridden by the
non-null keys of the stage's block. ``null`` in a block means "inherit".
Then the stages are wired together (`pipeline_stages`): models, windows,
chromosomes and loci flow from the stage that makes them to the stages that
read them; raw inputs become input stages (`prepare_inputs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import formats, layout
from ..errors import InputError
from ..io import as_list, fasta_chrom_sizes
from .schemas import (
    _BPNET_STAGES,
    _CHROMBPNET_STAGES,
    _OUTPUT_KEYS,
    INPUT_STAGES,
    BiasFitConfig,
    ChromBPNetFitConfig,
    ChromBPNetPipelineConfig,
    FoldConfig,
    NegativesConfig,
    PeakCallingConfig,
    ReadsConfig,
    StepConfig,
)
from .validation import _check, _validate, problems_error

# Defaults of a pipeline block that win over the top level (the reference's
# bias model is a 4-layer BPNet whatever the accessibility model's depth).
_BLOCK_DEFAULTS = {"bias_fit": {"n_layers": 4}}


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
_READS_FROM = {"motif_hits": "modisco_motifs", "modisco_report": "modisco_motifs",
               "modisco_motifs": "attribute"}
# Runs whenever the config gives all it needs (its motif database).
_WHEN_COMPLETE = {"bias_free_qc"}
# Stages that run a model, and the stage that trains it (for its windows).
_MODEL_READERS = {"predict": "fit", "evaluate": "fit", "attribute": "fit", "marginalize": "fit",
                  "variants": "fit", "bias_free_qc": "fit", "bias_qc": "bias_fit"}


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
        ``marginalize``, ``motif_hits`` when their ``*_parameters`` block is in the config
        (``{}`` for the defaults), or the block of a stage that reads their
        output is (TF-MoDISco reads the attributions); ``bias_free_qc``
        when there is a motif database. Model files follow `model_paths`:
        evaluate uses ``model`` (for ChromBPNet the full model, which
        predicts the observed signal), the other stages the model to
        interpret (for ChromBPNet the bias-free accessibility model). A
        stage that runs a model takes the windows of the stage that trains
        it unless it sets its own.

    With ``folds`` (see `fold_splits`), these are the stages of the
    ensemble: the models they name are the first fold's (the bias model
    is shared by the folds), but for ``variants``, which scores the mean of
    every fold's model; each fold's own stages are `fold_stages`.

    Raises
    ------
    InputError
        Listing the problems of every stage at once, each under the key
        where the user wrote it.
    """
    fold_splits(config, source, files=False)  # the folds' problems first
    return _pipeline_stages(config, source)


# The stages that run once per fold (`fold_stages`); the others run once, on the averages.
FOLD_STAGES = ("fit", "predict", "evaluate", "attribute", "marginalize")


def fold_stages(config: StepConfig, source: str = "<config>", files: bool = True) -> dict[str, dict[str, StepConfig]]:
    """Fold -> stage -> effective config of the stages each fold runs (`FOLD_STAGES`).

    Each fold's stages are the pipeline's, with the fold's training and
    validation chromosomes for the fit, evaluation on its test chromosomes,
    and its own model files (``results/<name>/folds/<fold>/``); predict,
    attribute and marginalize run every fold's model on the same loci, so
    that their outputs can be averaged. Empty without ``folds``, and for a
    number of folds whose FASTA is missing unless `files` (see `fold_splits`).
    """
    folds = {}
    for fold, split in fold_splits(config, source, files).items():
        stages = _pipeline_stages(_fold_config(config, split), source, fold=fold, test_chroms=split.test_chroms)
        folds[fold] = {stage: stages[stage] for stage in FOLD_STAGES if stage in stages}
    return folds


def with_fold_stages(stages: dict[str, StepConfig], folds: dict[str, dict[str, StepConfig]]) -> dict[str, StepConfig]:
    """`stages` and every fold's stages, these named ``<fold>/<stage>`` (the record of a run's parameters)."""
    return {**stages, **{f"{fold}/{stage}": step for fold, steps in folds.items() for stage, step in steps.items()}}


def _fold_config(config: StepConfig, split: FoldConfig) -> StepConfig:
    """`config` with the fit's chromosomes those of the fold `split`."""
    chroms = {"training_chroms": split.training_chroms, "validation_chroms": split.validation_chroms}
    updates: dict[str, Any] = dict(chroms)
    if config.fit_parameters is not None:
        updates["fit_parameters"] = config.fit_parameters.model_copy(update=dict.fromkeys(chroms))
    return config.model_copy(update=updates)


def n_folds(config: StepConfig) -> int:
    """The number of folds of a pipeline; 0 without ``folds``."""
    folds = getattr(config, "folds", None)
    return 0 if folds is None else folds if isinstance(folds, int) else len(folds)


def fold_splits(config: StepConfig, source: str = "<config>", files: bool = True) -> dict[str, FoldConfig]:
    """Fold name (``fold_0``, ...) -> its chromosomes; empty without ``folds``.

    ``folds`` is a list of ``{training_chroms, validation_chroms,
    test_chroms}`` blocks, or a number n: n folds of the fit's
    ``training_chroms`` and ``validation_chroms`` balanced by their lengths
    in the FASTA index (`bpnet_core.folds.balanced_folds` states the rule).
    Without `files` (a check of the config alone), a number of folds whose
    FASTA does not exist gives no folds yet instead of an error.

    Raises
    ------
    InputError
        Naming ``folds`` (and the block) for a number below 3 or above the
        number of chromosomes, an empty list, a chromosome that is not in
        the FASTA, or a given ``model`` / ``accessibility_model`` (each
        fold trains its own).
    """
    from ..folds import balanced_folds, check_n_folds, fold_names

    folds = getattr(config, "folds", None)
    if folds is None:
        return {}
    for key in ("model", "accessibility_model"):
        if getattr(config, key, None):
            raise InputError(f"{source}: config keys '{key}' and 'folds': each fold trains its own model; "
                             f"remove '{key}' to train the folds, or 'folds' to use the given model")
    fit, origin = _merge(config, "fit")
    sequences, sequences_key = fit.get("sequences"), origin.get("sequences", "sequences")
    if isinstance(folds, int):
        try:
            check_n_folds(folds)
        except ValueError as err:
            raise InputError(f"{source}: config key 'folds': {err}") from None
        if not files and not (sequences and Path(sequences).is_file()):
            return {}  # the FASTA is checked with the other files
        chroms = list(dict.fromkeys([*fit.get("training_chroms", []), *fit.get("validation_chroms", [])]))
        try:
            sizes = fasta_chrom_sizes(sequences, sequences_key) if sequences else {}
        except InputError as err:
            raise InputError(f"{source}: config key 'folds': the chromosome lengths are read from the FASTA: {err}") from None
        unknown = [chrom for chrom in chroms if chrom not in sizes]
        if unknown:
            raise InputError(f"{source}: config key 'folds': {', '.join(unknown)} (training_chroms, "
                             f"validation_chroms) not in the FASTA {sequences} (config key '{sequences_key}')")
        try:
            splits = [FoldConfig(**split) for split in balanced_folds({c: sizes[c] for c in chroms}, folds)]
        except ValueError as err:
            raise InputError(f"{source}: config key 'folds': {err}; the folds are made of the fit's "
                             "training_chroms and validation_chroms") from None
    else:
        splits = list(folds)
        if not splits:
            raise InputError(f"{source}: config key 'folds' is an empty list; give at least one fold, or leave it out")
        if sequences and Path(sequences).is_file():  # a missing FASTA is reported with the other files
            sizes = fasta_chrom_sizes(sequences, sequences_key)
            problems = [f"folds[{i}].{key}: {', '.join(unknown)} not in the FASTA {sequences} "
                        f"(config key '{sequences_key}')"
                        for i, split in enumerate(splits) for key in ("training_chroms", "validation_chroms", "test_chroms")
                        if (unknown := [chrom for chrom in getattr(split, key) if chrom not in sizes])]
            if problems:
                raise problems_error(problems, source)
    return dict(zip(fold_names(len(splits)), splits))


def _pipeline_stages(config: StepConfig, source: str, fold: str | None = None,
                     test_chroms: list[str] | None = None) -> dict[str, StepConfig]:
    """`pipeline_stages`, for one fold's models (`fold`) and evaluation chromosomes (`test_chroms`)."""
    config, inputs = prepare_inputs(config, source=source)
    try:
        paths = model_paths(config, fold=fold)
    except InputError as err:  # a given model file that cannot be used
        raise InputError(f"{source}: {err}") from None
    trained = trained_model_paths(config, fold=fold)
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
    for stage in ("predict", "attribute", "marginalize", "variants"):
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
        # Variants are scored with the bias-free model and, for contrast, the full model.
        own = origin["variants"].get("full_model") == "variants_parameters.full_model"
        inherit("variants", "full_model", paths["model"], "model", replace=not own)
    if n_folds(config) and fold is None:
        # The ensemble's variant scores: every fold's model, averaged (the first fold's otherwise).
        from ..folds import fold_names

        ensemble = [trained_model_paths(config, fold=name) for name in fold_names(n_folds(config))]
        inherit("variants", "model", [models[readout] for models in ensemble], "folds", replace=True)
        if chrombpnet:
            inherit("variants", "full_model", [models["model"] for models in ensemble], "folds", replace=True)
    if test_chroms is not None:
        inherit("evaluate", "chroms", test_chroms, "folds", replace=True)  # a fold is evaluated on its test chromosomes
    # Motifs are inserted into background, not into peaks that hold motifs already.
    on_background("marginalize")  # a no-op without negatives
    # Evaluation is on the validation chromosomes of the fit, at the peaks
    # that predict uses, against the signals the model was trained on.
    copy("evaluate", "chroms", "fit", "validation_chroms")
    copy("evaluate", "loci", "predict" if "loci" in merged["predict"] else "fit", "loci")
    for key in ("signals", "controls", "sequences"):
        copy("evaluate", key, "fit")
    for stage in ("predict", "attribute", "marginalize", "variants"):
        for key in ("sequences", "controls"):
            copy(stage, key, "fit")
    # The active allele is ranked among the peaks that predict uses (not the fit's negatives).
    copy("variants", "loci", "predict" if "loci" in merged["predict"] else "fit", "loci")
    # Attributions are of the peaks that predict uses, unless said otherwise.
    for key in ("loci", "chroms"):
        copy("attribute", key, "predict")
    copy("marginalize", "motifs", "modisco_report")
    # Fi-NeMo fits the patterns in the window TF-MoDISco learnt them from.
    for key in ("region_width", "modisco_region_width"):
        copy("motif_hits", key, "modisco_motifs", "window")
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
        if not {*as_list(getattr(step, "model", None)), *as_list(getattr(step, "full_model", None))} & set(trained.values()):
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
                   results: str = layout.RESULTS) -> tuple[StepConfig, dict[str, StepConfig]]:
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
    def is_reads(path: str, key: str) -> bool:
        # By content where the file exists, else by suffix (`formats.reads_format`).
        try:
            return formats.is_reads(path, key)
        except InputError as err:
            raise InputError(f"{source}: {err}") from None

    dataset = pipeline_name(config)
    fit, fit_origin = _merge(config, "fit")
    chrombpnet = is_chrombpnet(config)
    stranded = config.stranded if config.stranded is not None else not chrombpnet
    top, blocks = {}, {}
    stages: dict[str, StepConfig] = {}
    raw: dict[str, list[str]] = {}
    for key in ("signals", "controls"):
        fit_paths = fit.get(key) or []
        bigwigs = ([layout.path(f"reads_bigwig_{strand}", dataset, results, role=key) for strand in ("plus", "minus")]
                   if stranded else [layout.path("reads_bigwig", dataset, results, role=key)])
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
        top["loci"] = layout.path("peaks", dataset, results)
        stages["call_peaks"] = _validate_set(PeakCallingConfig, {
            "sequences": fit.get("sequences"), "signals": raw["signals"], "controls": raw.get("controls"),
            "stranded": stranded, "peak_qvalue": config.peak_qvalue, "genome_size": config.genome_size,
            "output_filename": top["loci"]}, source,
            {"signals": fit_origin.get("signals", "signals"), "controls": fit_origin.get("controls", "controls"),
             "sequences": fit_origin.get("sequences", "sequences")})
    if chrombpnet and config.negatives is None:
        top["negatives"] = layout.path("negatives", dataset, results)
        stages["negatives"] = _validate_set(NegativesConfig, {
            "sequences": fit.get("sequences"), "loci": fit.get("loci") or top["loci"],
            "chroms": [*fit.get("training_chroms", []), *fit.get("validation_chroms", [])],
            "in_window": fit.get("in_window"), "exclusion_lists": config.exclusion_lists,
            "random_state": fit.get("random_state"), "output_filename": top["negatives"],
            **({"negatives_per_peak": config.negatives_per_peak} if config.negatives_per_peak is not None else {})}, source,
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


def model_paths(config: StepConfig, results: str = layout.RESULTS, fold: str | None = None) -> dict[str, str]:
    """The model files of a pipeline: given ones that exist, else trained ones.

    The rule, for each of the pipeline's model keys: if it names a file
    that exists, that file is used as is, or, when it is a model file of
    another program (an official ChromBPNet/BPNet Keras ``.h5``, a
    bpnet-lite ``.torch``; see `imported_models`), its conversion
    ``<results>/<name>/imported/<key>.torch``; otherwise (null, or a file
    that does not exist yet) the pipeline writes one under ``<results>/<name>/``.

    - BPNet: ``model`` -> ``fit/<name>.torch``.
    - ChromBPNet: ``bias_model`` -> ``bias_fit/<name>.bias.torch``;
      ``model`` (full: frozen bias + accessibility) -> ``fit/<name>.torch``;
      ``accessibility_model`` -> ``fit/<name>.accessibility.torch``. A given
      full model skips the fit and its accessibility part is extracted; a
      given accessibility model with no full model is combined with the
      bias model instead of fitting.

    With ``folds``: `fold`'s models (by default the first fold's) under
    ``<results>/<name>/folds/<fold>/``; the bias model is shared.

    Returns
    -------
    dict
        ``model``, plus ``bias_model`` and ``accessibility_model`` for ChromBPNet.

    Raises
    ------
    InputError
        For a given file that is another program's model but cannot be
        used (damaged, or an architecture this package does not have).
    """
    imports = imported_models(config, results)
    name = pipeline_name(config)
    return {key: (layout.path("imported_model", name, results, model_key=key) if key in imports
                  else given if (given := _given_model(config, key)) else path)
            for key, path in trained_model_paths(config, results, fold).items()}


def _given_model(config: StepConfig, key: str) -> str | None:
    """The file `key` names, when it exists."""
    given = getattr(config, key)
    return given if given and Path(given).is_file() else None


def imported_models(config: StepConfig, results: str = layout.RESULTS) -> dict[str, str]:
    """Model key -> the given file of another program that the pipeline converts (rule ``import_model``).

    Told by the file's content (`bpnet_core.model_import.model_file_kind`),
    which also checks that it can be converted.
    """
    from ..model_import import FOREIGN_KINDS, model_file_kind  # torch-free

    return {key: given for key in trained_model_paths(config, results)
            if (given := _given_model(config, key)) and model_file_kind(given, key) in FOREIGN_KINDS}


def trained_model_paths(config: StepConfig, results: str = layout.RESULTS, fold: str | None = None) -> dict[str, str]:
    """Where the pipeline writes each model it trains (see `model_paths`, `layout.trained_models`).

    With ``folds``, `fold`'s models (by default the first fold's).
    """
    if fold is None and n_folds(config):
        from ..folds import fold_names

        fold = fold_names(1)[0]
    return layout.trained_models(pipeline_name(config), is_chrombpnet(config), results, fold)


def model_path(config: StepConfig, results: str = layout.RESULTS) -> str:
    """The (full) model file of a pipeline; see `model_paths`."""
    return model_paths(config, results)["model"]
