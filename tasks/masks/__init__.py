"""The ``masks`` stage: per-frame foreground masks of every clip; ``sequences``: mask sequences a user draws."""
