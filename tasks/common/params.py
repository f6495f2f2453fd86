"""Loading one stage's section of ``params.yaml`` into its validated pydantic config.

Every stage owns a pydantic model (defined next to the stage's code) with ``extra="forbid"``,
so a misspelt key or a wrong type fails before any work starts, and the message names
the file, the section and the key.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Annotated, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_PARAMS = Path("params.yaml")

ConfigT = TypeVar("ConfigT", bound=BaseModel)
# a setting that is the share of items (frames, windows, scenes) something happens to: 0 = none, 1 = all
Share = Annotated[float, Field(ge=0, le=1)]


class ConfigError(ValueError):
    """A params file or section that does not validate."""


class StageConfig(BaseModel):
    """Base for every stage's config: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's booleans: only true and false (any case), so ``off``, ``no``,
    ``on`` and ``yes`` stay strings. Why: ``dvc exp run -S`` rewrites params.yaml with ruamel.yaml, a YAML
    1.2 writer, which drops the quotes of ``shared_noise: "off"``; YAML 1.1 would read that back as false."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def read_params(path: str | Path = DEFAULT_PARAMS) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    with path.open() as f:
        data = yaml.load(f, Loader=Yaml12Loader) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of stage sections, got {type(data).__name__}")
    return data


def load_stage_config(
    cls: type[ConfigT], section: str, path: str | Path = DEFAULT_PARAMS, overrides: dict | None = None
) -> ConfigT:
    """Validate ``params[section]`` (merged with ``overrides``) as ``cls``.

    A missing section means "all defaults". Errors name ``<file>: <section>.<key>``.
    """
    data = read_params(path)
    raw = data.get(section) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: section '{section}' must be a mapping, got {type(raw).__name__}")
    return validate_config(cls, {**raw, **(overrides or {})}, f"{path}: {section}")


def validate_config(cls: type[ConfigT], raw: dict, where: str) -> ConfigT:
    try:
        return cls.model_validate(raw)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"])
            problems.append(f"{where}.{key}: {e['msg']}")
        raise ConfigError("invalid params:\n  " + "\n  ".join(problems)) from None


def apply_profile(params_path: str | Path, profile_path: str | Path) -> dict:
    """Merge a profile's sections key by key over a params file, in place; returns the result.

    A profile may only set keys that already exist in params.yaml, so a typo cannot hide. The file is
    rewritten by a round-trip YAML writer (ruamel.yaml, as ``dvc exp run -S`` does): its comments,
    order and layout stay; only the values the profile sets change (a nested mapping, e.g. base.sd14,
    is replaced whole). Written to a temporary file first: an interrupted apply leaves the old file.
    """
    from ruamel.yaml import YAML

    read_params(params_path)  # a missing or malformed file is named before anything is written
    profile = read_params(profile_path)
    yaml_rt = YAML()  # round-trip: comments kept
    yaml_rt.preserve_quotes = True
    yaml_rt.width = 4096  # long lines stay one line, as written
    yaml_rt.representer.add_representer(  # null as params.yaml writes it, not an empty value
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    params_path = Path(params_path)
    params = yaml_rt.load(params_path.read_text())
    for section, values in profile.items():
        if section not in params:
            raise ConfigError(f"{profile_path}: section '{section}' is not in {params_path}")
        unknown = set(values) - set(params[section] or {})
        if unknown:
            raise ConfigError(f"{profile_path}: {section}.{sorted(unknown)[0]} is not a key of {params_path}")
        for key, value in values.items():
            _replace_keeping_comments(params[section], key, value)
    buffer = io.StringIO()
    yaml_rt.dump(params, buffer)
    tmp = params_path.with_name(f".{params_path.name}.tmp")
    tmp.write_text(buffer.getvalue())
    os.replace(tmp, params_path)
    return read_params(params_path)


def _replace_keeping_comments(mapping, key, value) -> None:
    """``mapping[key] = value``; a mapping replacing a mapping is written key by key (keys it lacks
    removed), so the result is the same whole replacement and each kept key keeps its comment."""
    old = mapping.get(key)
    if isinstance(value, dict) and isinstance(old, dict):
        for k in [k for k in old if k not in value]:
            del old[k]
        for k, v in value.items():
            _replace_keeping_comments(old, k, v)
    else:
        mapping[key] = value


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "apply":
        sys.exit("usage: python -m tasks.common.params apply PROFILE.yaml")
    apply_profile(DEFAULT_PARAMS, sys.argv[2])
