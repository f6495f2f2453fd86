#!/usr/bin/env bash
# The guidance-interval sweep (bench/speed/guidance_intervals.yaml) on the main job's checkpoint, after make demo:
# each variant samples data/checkpoints/ckpt-001250 (linked, never retrained) and is evaluated as the
# evaluate stage does. WORK (default /tmp/guidance-intervals) holds the videos.
set -euo pipefail
WORK=${WORK:-/tmp/guidance-intervals}
SPEC=bench/speed/guidance_intervals.yaml
for variant in $(python -c "import yaml; print(' '.join(yaml.safe_load(open('$SPEC'))['variants']))"); do
  mkdir -p "$WORK/$variant/checkpoints"
  ln -sfn "$PWD/data/checkpoints/ckpt-001250" "$WORK/$variant/checkpoints/ckpt-001250"
done
# one variant at a time (--only): a run stopped half-way keeps the rows it wrote; VARIANTS picks some
for variant in ${VARIANTS:-$(python -c "import yaml; print(' '.join(yaml.safe_load(open('$SPEC'))['variants']))")}; do
  python bench/fewshot/fewshot_sweep.py "$SPEC" --eval-only --work "$WORK" --only "$variant" "$@"
done
