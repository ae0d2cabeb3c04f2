"""What every wanbot process shares, torch-free: the config file's sections, the job wire format and
its serializer, the presets table, refusals, image checks, MP4 encoding and muxing, logs and metrics.

The bot imports this package and never `generator.engine` or `generator.worker` (pyproject.toml's
import-linter contracts check it), so its image needs no PyTorch.
"""
