"""Loading one stage's section of ``params.yaml`` into its validated pydantic config.

Every stage owns a pydantic model (defined next to the stage's code) with ``extra="forbid"``,
so a misspelt key or a wrong type fails before any work starts, and the message names
the file, the section and the key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

DEFAULT_PARAMS = Path("params.yaml")

ConfigT = TypeVar("ConfigT", bound=BaseModel)


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

    A profile may only set keys that already exist in params.yaml, so a typo cannot hide.
    """
    params, profile = read_params(params_path), read_params(profile_path)
    for section, values in profile.items():
        if section not in params:
            raise ConfigError(f"{profile_path}: section '{section}' is not in {params_path}")
        unknown = set(values) - set(params[section] or {})
        if unknown:
            raise ConfigError(f"{profile_path}: {section}.{sorted(unknown)[0]} is not a key of {params_path}")
        params[section].update(values)
    with Path(params_path).open("w") as f:
        yaml.safe_dump(params, f, sort_keys=False)
    return params


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "apply":
        sys.exit("usage: python -m tasks.common.params apply PROFILE.yaml")
    apply_profile(DEFAULT_PARAMS, sys.argv[2])
