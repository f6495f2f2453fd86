"""The ``toyworld`` stage: renders the built-in toy dataset (training videos, held-out mask sequences)."""
