"""Logging set-up for every wanbot process: one format, context in the message (job id, account)."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level.upper(), format=FORMAT)
    # Libraries that log every request at INFO would drown the job lines.
    for noisy in ("httpx", "arq.worker", "arq.jobs", "diffusers", "transformers"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    # "CLIPImageProcessor requires torchvision": the Wan image pipelines import it, wanbot never uses it.
    logging.getLogger("transformers.utils.import_utils").setLevel(logging.ERROR)
