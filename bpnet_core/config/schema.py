"""The JSON Schema of every config file (``workflow/schemas/config.schema.json``)."""

from __future__ import annotations

from .schemas import PIPELINE_MODELS, STEP_MODELS


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
