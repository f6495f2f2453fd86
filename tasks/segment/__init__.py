"""Segmenters shared by the masks stage and evaluate: SAM with frame-to-frame propagation, a classical fallback."""
