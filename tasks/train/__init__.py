"""The ``train`` stage: few-shot training of the mask-guided video UNet, checkpoints and a validation GIF."""
