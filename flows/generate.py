"""Batch generation: one mapped Prefect task per (sequence x prompt x seed).

As the DVC stage (``python -m flows.generate``) it reads ``params.yaml``'s ``generate`` section. As
the ``generate/batch`` deployment its parameters name the prompts, mask sequences and seeds, and
the videos go to a folder of their own (``data/batches/{run}``), never into the DVC-tracked
``data/outputs``.
"""

from prefect import flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE

from flows.artifacts import publish_output_links
from flows.common import run_label, run_stage, stage_config, task_runner_from_env, timeout_from_env, transient_retries
from tasks.common.params import validate_config
from tasks.generate.config import GenerateConfig
from tasks.generate.jobs import Job
from tasks.generate.stage import generate, generate_one

# The job key in each video's meta.json already skips finished work (it hashes the checkpoint file,
# the sampler settings, the prompt, the masks and the seed); a Prefect cache would say less.
# Timeout: a 16-frame toy video takes ~20 s on a 2-core CPU, an SD1.4 512x512 one ~1-2 min on a GPU;
# 30 min means something hangs. Set MASKMOTION_VIDEO_TIMEOUT_S for slower set-ups (0: none).
# On a worker thread the timeout lands between Python steps (denoising steps), not inside one torch call.
VIDEO_TASK_OPTIONS = dict(
    cache_policy=NO_CACHE,
    timeout_seconds=timeout_from_env("MASKMOTION_VIDEO_TIMEOUT_S", 1800),
    **transient_retries(retries=2, first_delay_s=10),
)
generate_video = task(generate_one, name="generate-video", **VIDEO_TASK_OPTIONS)


def generate_videos(cfg: GenerateConfig, jobs: list[Job] | None = None) -> list[dict]:
    """The generate loop with its jobs mapped over the flow's task runner; the rows. Inside a flow only."""
    rows: list[dict] = []

    def mapped(jobs: list[Job], cfg: GenerateConfig, checkpoint) -> list[dict]:
        rows.extend(f.result() for f in generate_video.map(jobs, unmapped(cfg), unmapped(checkpoint)))
        return rows

    generate(cfg, jobs, run_jobs=mapped)
    return rows


@flow(name="generate", log_prints=True, task_runner=task_runner_from_env())
def generate_flow(
    params_path: str = "params.yaml",
    prompts: list[str] | None = None,
    sequences: str | None = None,
    seeds: list[int] | None = None,
    out_dir: str | None = None,
    overrides: dict | None = None,
) -> list[dict]:
    """Generate a video for every (mask sequence x prompt x seed).

    Args:
        params_path: the params file whose `generate` section holds the defaults.
        prompts: prompts to cross with every sequence; none: each sequence's own prompt.
        sequences: a sequences manifest (YAML `sequences: [{id, prompt, masks}]`) or its folder, relative to the
            project; none: params' `generate.sequences` (the held-out set).
        seeds: one video per seed; none: params' `generate.seeds`.
        out_dir: where the videos go; `{run}` becomes this run's UTC time and name. None: params'
            `generate.out_dir` (the DVC stage's output).
        overrides: any other `generate` settings, e.g. {"num_inference_steps": 50}.
    """
    cfg = stage_config(GenerateConfig, "generate", params_path)
    named = {"prompts": prompts, "sequences": sequences, "seeds": seeds, "out_dir": out_dir}
    changes = {**(overrides or {}), **{k: v for k, v in named.items() if v is not None}}
    if "out_dir" in changes:
        changes["out_dir"] = str(changes["out_dir"]).replace("{run}", run_label())
    if changes:
        cfg = validate_config(GenerateConfig, {**cfg.model_dump(), **changes}, "generate")
    get_run_logger().info("generating into %s", cfg.out_dir)
    rows = generate_videos(cfg)
    publish_output_links(rows, cfg.out_dir)
    return rows


if __name__ == "__main__":  # the guard also keeps Dask's spawned workers from re-running the flow
    run_stage(generate_flow)
