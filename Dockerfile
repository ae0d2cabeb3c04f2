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
VOLUME /data
WORKDIR /data
ENTRYPOINT ["wanbot", "--config", "/config/config.toml"]
CMD ["bot"]

FROM pytorch/pytorch:2.8.0-cuda12.8-cudnn9-runtime AS worker
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HOME=/models/hf
COPY --from=source /app /app
# torch comes with the base image; the generator extra adds diffusers and friends, fp8 adds torchao.
RUN pip install '/app[generator,fp8]'
VOLUME /models
ENTRYPOINT ["wanbot", "--config", "/config/config.toml"]
CMD ["worker"]
