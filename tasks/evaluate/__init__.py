"""The ``evaluate`` stage: CLIP text alignment, frame consistency and foreground IoU; report and run history."""
