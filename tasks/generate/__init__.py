"""The ``generate`` stage: videos from the latest checkpoint over mask sequences and prompts."""
