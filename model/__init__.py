"""Networks and samplers: pure torch + diffusers (no Prefect, DVC or file layout here)."""
