"""Reading config files and telling which config a JSON object is."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from .pipeline import pipeline_stages
from .schemas import PIPELINE_MODELS, STEP_MODELS, StepConfig
from .validation import _validate

# Keys that make a config a ChromBPNet one. BPNet configs may name background
# `negatives` too (bpnet-lite 1.1's key); in a pipeline, `"negatives": null`
# (draw them) is ChromBPNet's alone.
_CHROMBPNET_KEYS = {"bias_model", "accessibility_model", "beta", "bias_fit_parameters",
                    "bias_qc_parameters", "bias_free_qc_parameters"}


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
    chrombpnet = bool(_CHROMBPNET_KEYS & data.keys())
    if any(key.endswith("_parameters") and key != "bias_fit_parameters" for key in data):
        # Only a pipeline draws negatives; in a single step's config (as
        # `to_params` writes a BPNet fit's) a null `negatives` is BPNet's default.
        drawn = "negatives" in data and data["negatives"] is None
        return "chrombpnet_pipeline" if chrombpnet or drawn else "bpnet_pipeline"
    if chrombpnet:
        return "chrombpnet_fit"
    if "variants" in data:
        return "variants"
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
