# Two images from one file:
#   docker build --target bot    -t wanbot-bot .     (slim: chat front ends + ledger, no torch)
#   docker build --target worker -t wanbot-worker .  (CUDA PyTorch: one per GPU)

FROM scratch AS source
COPY pyproject.toml README.md /app/
COPY bot /app/bot
COPY credits /app/credits
COPY generator /app/generator
COPY wanbot /app/wanbot
COPY benchmarks /app/benchmarks

FROM python:3.11-slim AS bot
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY --from=source /app /app
RUN pip install /app
# Not root: the bot writes only its SQLite ledger under /data. A volume made by an older, root image
# needs `docker compose run --rm --user root --entrypoint chown bot -R 10001 /data` once.
RUN useradd --system --uid 10001 --home-dir /data wanbot && mkdir -p /data && chown wanbot /data
VOLUME /data
WORKDIR /data
USER wanbot
ENTRYPOINT ["wanbot", "--config", "/config/config.toml"]
CMD ["bot"]

FROM pytorch/pytorch:2.8.0-cuda12.8-cudnn9-runtime AS worker
# The hub cache (checkpoints named by hub id, gated ones with HF_TOKEN) and compile caches live in
# /cache, so /models can be mounted read-only.
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HOME=/cache/hf
COPY --from=source /app /app
# torch comes with the base image; the generator extra adds diffusers and friends, fp8 adds torchao.
RUN pip install '/app[generator,fp8]'
# Not root: a worker reads its models and writes only the caches.
RUN useradd --system --uid 10001 --home-dir /cache wanbot && mkdir -p /models /cache/hf && chown -R wanbot /models /cache
VOLUME ["/models", "/cache"]
USER wanbot
ENTRYPOINT ["wanbot", "--config", "/config/config.toml"]
CMD ["worker"]
