"""Few-shot mask-guided training; resumes from the latest checkpoint by itself."""

from prefect import flow, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from flows.common import run_stage, run_summarised
from tasks.train.config import TrainConfig
from tasks.train.stage import train


class ProgressArtifact:
    """Mirror the training steps into a Prefect progress artifact, at most every ``every`` steps."""

    def __init__(self, key: str, every: int = 10):
        self.id = create_progress_artifact(0.0, key=key, description="training steps done (%)")
        self.every = every

    def __call__(self, step: int, total: int, loss: float) -> None:
        if step % self.every == 0 or step == total:
            update_progress_artifact(
                self.id, 100.0 * step / total, description=f"step {step}/{total}, loss {loss:.4f}"
            )


@task(name="train-video-model")
def train_task(cfg: TrainConfig) -> dict:
    return train(cfg, progress=ProgressArtifact("train-progress"))


@flow(name="train", log_prints=True)
def train_flow(params_path: str = "params.yaml") -> dict:
    return run_summarised(train_task, TrainConfig, "train", params_path, "train-metrics", "Training metrics")


if __name__ == "__main__":
    run_stage(train_flow)
