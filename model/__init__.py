"""Networks and samplers: pure torch + diffusers (no Prefect, DVC or file layout here).

Modules, one job each:
    attention   video self-attention processor (first_frame / sparse_causal / per_frame / full) and
                mask cross-attention processor (eq. 5-7); VideoContext carries frames and masks
    temporal    zero-initialised temporal conv and temporal attention, and the wrapper that adds
                them after each spatial transformer
    video_unet  VideoUNetConfig, inflate_unet(unet2d, config) -> VideoUNet, the SD1.4 UNet config
    trainable   set_trainable (paper / lamp / new_layers), trainable_state_dict, load_trainable_state_dict
    training    first_frame_loss (eq. 2)
    sampling    shared_noise (eq. 8), adain, regional_adain (AdaIN per object), motion_windows
    pipeline    MaskVideoPipeline (frame 1 by ControlNet or text-to-image, DDIM + CFG, chunked long videos)
"""
