"""Helpers every stage may use: atomic io, params, device, video, visualize, base-model loading, the toy world."""
