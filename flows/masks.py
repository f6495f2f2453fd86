"""Masks: one binary foreground mask per clip frame (user masks, SAM, or the classical fallback)."""

from prefect import flow, get_run_logger, task

from flows.common import publish_summary, run_stage, stage_config
from tasks.masks.stage import MasksConfig, run_masks

# Bad input and a bad checkpoint are not transient: no retries; a failure leaves old masks untouched.
masks_task = task(run_masks, name="make-masks")


@flow(name="masks", log_prints=True)
def masks_flow(params_path: str = "params.yaml") -> dict:
    cfg = stage_config(MasksConfig, "masks", params_path)
    logger = get_run_logger()
    metrics = masks_task(cfg)  # warns in the run log when the fallback stands in for SAM
    for vid, m in metrics["per_video"].items():
        logger.info(
            "%s: method %s, IoU %s, %s lost frames, %.4f s/frame",
            vid,
            m["method"],
            m["iou"],
            m["lost_frames"],
            m["seconds_per_frame"],
        )
    logger.info(
        "mean IoU %s over %d videos with truth; methods %s",
        metrics["mean_iou"],
        metrics["n_with_truth"],
        metrics["methods"],
    )
    publish_summary("masks-report", "Masks report", metrics)
    return metrics


if __name__ == "__main__":
    run_stage(masks_flow)
