"""Render the toy world: few-shot training videos + held-out mask sequences."""

from prefect import flow, task

from flows.common import publish_summary, run_stage, stage_config
from tasks.toyworld.stage import ToyWorldConfig, render_toyworld

render = task(render_toyworld, name="render-toyworld")


@flow(name="toyworld", log_prints=True)
def toyworld_flow(params_path: str = "params.yaml") -> str:
    cfg = stage_config(ToyWorldConfig, "toyworld", params_path)
    out = render(cfg)
    publish_summary("toyworld", "Toy world", {"out_dir": str(out), **cfg.model_dump()})
    return str(out)


if __name__ == "__main__":
    run_stage(toyworld_flow)
