"""Config errors as users read them: one line per offending key, named where it was written.

`_check` / `_validate` validate a dict against a model; `problems_error`
joins problems into one `InputError`; `as_step_config` is how a stage
accepts either a validated config or a plain dict.
"""

from __future__ import annotations

import difflib
import json
import re

from pydantic import BaseModel, ValidationError

from ..errors import InputError
from .schemas import StepConfig


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
