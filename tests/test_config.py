"""Config models, pipeline merging and validation messages."""

from __future__ import annotations

import json

import jsonschema
import pytest

from bpnet_core.config import (
    BPNetPipelineConfig,
    ChromBPNetPipelineConfig,
    FitConfig,
    PredictConfig,
    detect_kind,
    json_schema,
    load_config,
    model_path,
    parse_config,
    pipeline_stages,
    read_config,
)
from bpnet_core.errors import InputError

from conftest import REPO

CONFIGS = sorted((REPO / "config").glob("*.json"))
FIT = json.loads((REPO / "config" / "bpnet_fit.json").read_text())
PIPELINE = json.loads((REPO / "config" / "ENCSR000BGQ.json").read_text())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_file_validates(path):
    config = load_config(path)
    params = config.to_params()
    # Every key the file writes is kept, and the parameters read back as the same kind of config.
    assert set(read_config(path)) - {"negatives"} <= set(params)
    again = parse_config(json.loads(json.dumps(params)), source=path.name)
    assert type(again) is type(config) and again == config


def test_seed_examples_are_all_present():
    names = {p.stem for p in CONFIGS}
    assert {"bpnet_fit", "bpnet_predict", "bpnet_attribute", "bpnet_marginalize", "ENCSR000BGQ",
            "chrombpnet_fit", "ENCSR637XSC", "demo"} <= names


def test_kinds_are_detected():
    assert isinstance(load_config(REPO / "config" / "ENCSR000BGQ.json"), BPNetPipelineConfig)
    assert isinstance(load_config(REPO / "config" / "ENCSR637XSC.json"), ChromBPNetPipelineConfig)
    assert type(load_config(REPO / "config" / "bpnet_predict.json")).__name__ == "PredictConfig"
    assert type(load_config(REPO / "config" / "bpnet_attribute.json")).__name__ == "AttributeConfig"
    assert type(load_config(REPO / "config" / "bpnet_marginalize.json")).__name__ == "MarginalizeConfig"
    assert type(load_config(REPO / "config" / "chrombpnet_fit.json")).__name__ == "ChromBPNetFitConfig"


def test_seed_defaults_fill_missing_keys():
    minimal = {k: FIT[k] for k in ("training_chroms", "validation_chroms", "sequences", "loci", "signals")}
    config = FitConfig.model_validate(minimal)
    assert (config.n_filters, config.n_layers, config.batch_size) == (64, 8, 64)
    assert (config.in_window, config.out_window, config.max_jitter) == (2114, 1000, 128)
    assert (config.lr, config.alpha, config.max_epochs, config.validation_iter) == (0.001, 1.0, 50, 100)
    assert config.reverse_complement and config.profile_output_bias and config.count_output_bias
    assert (config.min_counts, config.max_counts, config.controls) == (0, 99999999, None)


def test_pipeline_merge_top_level_then_block_then_null_inherits():
    config = parse_config(PIPELINE)
    stages = pipeline_stages(config)
    fit, predict, attribute = stages["fit"], stages["predict"], stages["attribute"]
    # top-level keys are defaults ...
    assert fit.alpha == 10 and fit.n_filters == 64 and fit.name == "spi1"
    assert fit.signals == PIPELINE["signals"]
    # ... a non-null block value overrides ...
    assert fit.loci == PIPELINE["fit_parameters"]["loci"]
    assert attribute.batch_size == 1 and fit.batch_size == 64
    assert attribute.chroms == ["chr8"]
    # ... and null inherits the top level.
    assert fit.sequences == PIPELINE["sequences"]
    assert predict.controls == PIPELINE["controls"]
    assert fit.random_state == 0  # null everywhere -> the step's default


def test_block_override_changes_only_that_stage():
    edited = json.loads(json.dumps(PIPELINE))
    edited["predict_parameters"]["batch_size"] = 7
    before = {k: v.to_params() for k, v in pipeline_stages(parse_config(PIPELINE)).items()}
    after = {k: v.to_params() for k, v in pipeline_stages(parse_config(edited)).items()}
    assert [k for k in before if before[k] != after[k]] == ["predict"]


def test_evaluate_stage_uses_validation_chromosomes_and_fit_signals():
    stages = pipeline_stages(parse_config(PIPELINE))
    evaluate = stages["evaluate"]
    assert evaluate.chroms == PIPELINE["fit_parameters"]["validation_chroms"]
    assert evaluate.signals == PIPELINE["signals"]
    assert evaluate.loci == PIPELINE["predict_parameters"]["loci"]
    assert evaluate.model == stages["predict"].model


def test_params_are_plain_sorted_data():
    params = pipeline_stages(parse_config(PIPELINE))["fit"].to_params()
    assert list(params) == sorted(params)
    assert json.loads(json.dumps(params)) == params


def test_model_rule_uses_existing_file_else_trains(tmp_path):
    config = parse_config({**PIPELINE, "model": str(tmp_path / "given.torch")})
    assert model_path(config) == "results/spi1/fit/spi1.torch"
    (tmp_path / "given.torch").write_bytes(b"x")
    assert model_path(config) == str(tmp_path / "given.torch")
    assert pipeline_stages(config)["predict"].model == str(tmp_path / "given.torch")
    assert model_path(parse_config({**PIPELINE, "model": None})) == "results/spi1/fit/spi1.torch"


def test_chrombpnet_bias_block_defaults_and_negatives():
    data = json.loads((REPO / "config" / "ENCSR637XSC.json").read_text())
    data["bias_fit_parameters"] = {"n_layers": None, "loci": None}
    stages = pipeline_stages(parse_config(data))
    assert stages["bias_fit"].n_layers == 4  # the bias block's own default wins over top-level 8
    assert stages["fit"].n_layers == 8
    assert stages["bias_fit"].loci == data["negatives"]


def _error(data, kind=None) -> str:
    with pytest.raises(InputError) as info:
        parse_config(data, source="my.json", kind=kind)
    return str(info.value)


def test_unknown_key_suggests_closest():
    message = _error({**FIT, "n_filter": 3})
    assert message == "my.json: unknown key 'n_filter' (did you mean 'n_filters'?)"


def test_unknown_nested_key_names_block():
    data = json.loads(json.dumps(PIPELINE))
    data["predict_parameters"]["batchsize"] = 3
    assert _error(data) == "my.json: unknown key 'predict_parameters.batchsize' (did you mean 'batch_size'?)"


def test_wrong_type_names_key_and_value():
    message = _error({**FIT, "n_layers": "eight"})
    assert message.startswith("my.json: key 'n_layers': ")
    assert '"eight"' in message
    assert "expected str or list" in _error({**FIT, "loci": 5})


def test_missing_required_key():
    data = dict(FIT)
    del data["signals"]
    assert _error(data) == "my.json: missing required key 'signals'"


def test_missing_key_in_pipeline_stage_names_block():
    data = json.loads(json.dumps(PIPELINE))
    del data["fit_parameters"]["training_chroms"]
    assert "missing required key 'fit_parameters.training_chroms'" in _error(data)


@pytest.mark.parametrize("windows, expected", [
    ((1000, 2114), "in_window (1000) must be at least out_window (2114)"),
    ((2115, 1000), "in_window - out_window (2115 - 1000) must be even"),
])
def test_window_relations(windows, expected):
    message = _error({**FIT, "in_window": windows[0], "out_window": windows[1]})
    assert message.startswith("my.json: ") and expected in message


def test_empty_chromosome_lists():
    assert "training_chroms is an empty list" in _error({**FIT, "training_chroms": []})
    assert "chroms is an empty list" in _error({"model": "m", "sequences": "s", "loci": "l", "chroms": []}, kind="predict")


def test_overlapping_chromosomes():
    message = _error({**FIT, "validation_chroms": ["chr8", "chr2"]})
    assert message == "my.json: training_chroms and validation_chroms overlap: chr2"


def test_several_problems_are_listed_together():
    message = _error({**FIT, "n_filter": 3, "lr": "fast"})
    assert message.startswith("my.json: 2 problems:")
    assert "n_filter" in message and "'lr'" in message


def test_bad_json_and_missing_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"n_filters": 64 "n_layers": 8}')
    with pytest.raises(InputError, match=r"bad.json: not valid JSON at line 1, column 18"):
        load_config(bad)
    with pytest.raises(InputError, match="absent.json: config file not found"):
        load_config(tmp_path / "absent.json")


def test_schema_file_is_in_sync():
    stored = json.loads((REPO / "workflow" / "schemas" / "config.schema.json").read_text())
    assert stored == json.loads(json.dumps(json_schema())), "run `make schema`"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_schema_accepts_configs(path):
    jsonschema.validate(json.loads(path.read_text()), json_schema())


def test_schema_rejects_unknown_key():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**FIT, "n_filtres": 3}, json_schema())


def test_predict_accepts_signals_key_of_chrombpnet_example():
    config = PredictConfig.model_validate({"model": "m", "sequences": "s", "loci": "l", "signals": None})
    assert config.signals is None
    assert config.profile_filename == "y_profile.npz" and config.counts_filename == "y_counts.npz"


def test_bpnet_pipeline_with_background_negatives(tiny_data):
    from conftest import tiny_pipeline_config

    data = tiny_pipeline_config(tiny_data, negatives=str(tiny_data["negatives"]),
                                marginalize_parameters={"motifs": str(tiny_data["motifs"])})
    data["fit_parameters"]["loci"] = str(tiny_data["peaks"])
    config = parse_config(data)
    assert detect_kind(data) == "bpnet_pipeline"
    stages = pipeline_stages(config)
    assert stages["fit"].negatives == str(tiny_data["negatives"]) and stages["fit"].negative_ratio == 0.333
    assert stages["evaluate"].loci == str(tiny_data["peaks"])
    assert stages["marginalize"].loci == str(tiny_data["negatives"])
    # Asking for drawn background regions is ChromBPNet's alone.
    assert detect_kind({**data, "negatives": None}) == "chrombpnet_pipeline"
