"""Base models: train the toy world's SD / ControlNet / CLIP stand-ins, or check the sd14 weights."""

from pathlib import Path

from prefect import flow, task

from flows.common import publish_summary, run_stage, stage_config
from tasks.base.config import BaseConfig
from tasks.common.io import write_json


@task(name="build-toy-base")
def build_toy(cfg: BaseConfig) -> dict:
    from tasks.base.build import build_toy_base

    return build_toy_base(cfg)


@task(name="check-sd14-weights")
def check_sd14_weights(cfg: BaseConfig) -> dict:
    from tasks.base.sd14 import check_sd14

    report = check_sd14(cfg.sd14)
    write_json(Path(cfg.out_dir) / "sd14_check.json", report)  # the stage's output in this world
    write_json(cfg.metrics, report)
    return report


@task(name="train-saved-decoder")
def train_saved_decoder(cfg: BaseConfig) -> dict:
    from tasks.base.saved import train_saved_decoder

    return train_saved_decoder(cfg)


@task(name="measure-saved-base")
def measure_saved_base(cfg: BaseConfig) -> dict:
    from tasks.base.saved import measure_saved_base

    return measure_saved_base(cfg)


@flow(name="base", log_prints=True)
def base_flow(params_path: str = "params.yaml", decoder_only: bool = False, measure_only: bool = False) -> dict:
    """``decoder_only``: run only the last step of the toy build (the VAE's decoder trained on with
    its encoder frozen) on the base already built; the rest of it is kept. ``measure_only``: measure
    the built base again (figures added since it was built), its models kept."""
    cfg = stage_config(BaseConfig, "base", params_path)
    if cfg.world != "toy":
        report = check_sd14_weights(cfg)
    elif measure_only:
        report = measure_saved_base(cfg)
    else:
        report = train_saved_decoder(cfg) if decoder_only else build_toy(cfg)
    publish_summary("base-report", f"Base models ({cfg.world})", report)
    return report


if __name__ == "__main__":
    run_stage(
        base_flow,
        {
            "decoder_only": "train only the VAE's decoder on the base already built (its other models kept)",
            "measure_only": "measure the built base again, its models kept",
        },
    )
