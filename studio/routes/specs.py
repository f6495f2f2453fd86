"""A page state drawn as a preview, and a spec YAML the page loads (with the PNGs chosen beside it)."""

from __future__ import annotations

from pathlib import Path

import yaml
from fastapi import APIRouter

from studio.core import Studio
from studio.preview import preview
from studio.spec import PNG_IN_SPEC, Problems, from_spec, problem
from tasks.common.params import ConfigError, validate_config
from tasks.masks.sequences import SequenceSpec


def router(studio: Studio) -> APIRouter:
    routes = APIRouter()

    @routes.post("/api/preview")
    def preview_route(body: dict):
        c = studio.check(body)
        shown = preview(c.spec, c.per_object, c.first_frame, studio.stages.generate.fps)
        return {**shown, "errors": c.errors, "warnings": c.warnings}

    @routes.post("/api/spec/load")
    def load_spec_text(body: dict):
        """A spec YAML the page was given, with the PNGs chosen with it (as upload ids by file name)."""
        files = body.get("files") or {}
        try:
            raw = yaml.safe_load(str(body.get("yaml", ""))) or {}
        except yaml.YAMLError as err:
            raise Problems([problem("spec", f"not YAML: {str(err).splitlines()[0]}")]) from None
        try:
            spec = validate_config(SequenceSpec, raw if isinstance(raw, dict) else {}, "spec")
        except ConfigError as err:
            raise Problems([problem("spec", line.strip()) for line in str(err).splitlines()[1:]]) from None
        try:  # the spec's problems are said at the spec's field: the page's own fields are not what was loaded
            studio.bounded_spec(spec)
        except Problems as err:
            raise Problems([_at_spec(p) for p in err.problems]) from None

        def upload_for(name: str, i: int) -> str:
            base = Path(name).name
            if not PNG_IN_SPEC.match(base) or base not in files:
                raise Problems([problem("spec", f"objects.{i}.mask '{name}': choose {base} together with the spec")])
            studio.uploads.existing("objects", files[base], "spec")
            return files[base]

        try:
            return from_spec(spec, upload_for, {"prompt": str(body.get("prompt", ""))})
        except Problems as err:
            raise Problems([_at_spec(p) for p in err.problems]) from None

    return routes


def _at_spec(p: dict) -> dict:
    """A loaded spec's problem, said at the spec's field with its own key."""
    return problem("spec", p["message"] if p["message"].startswith(p["field"]) else f"{p['field']}: {p['message']}")
