# Two commands on a fresh Debian/Ubuntu machine:  `make demo`  and  `make test`.
# Both install what they need first: a venv with the packages, and redis-server if missing.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of PyTorch keeps the demo and the tests small; on a CUDA host use
# `make setup TORCH=torch` (or the Docker worker image).
TORCH  ?= torch==2.13.0
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test bench gpu-bench gpu-bench-quick lint clean

setup: $(VENV)/.installed /usr/bin/redis-server

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e '.[generator,test]'
	touch $@

/usr/bin/redis-server:
	command -v redis-server >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq --no-install-recommends redis-server; }

demo: setup
	$(BIN)/wanbot demo

test: setup
	$(BIN)/lint-imports && $(BIN)/pytest -q

bench: setup
	$(BIN)/python -m benchmarks.ledger_bench
	$(BIN)/python -m benchmarks.overhead_bench
	$(BIN)/python -m benchmarks.audio_bench
	$(BIN)/python -m benchmarks.telegram_bench
	$(BIN)/python -m benchmarks.discord_bench
	$(BIN)/python -m benchmarks.flood_bench
	$(BIN)/python -m benchmarks.hostile_images_bench

# Real-size Wan components on random weights: run on a CUDA host (after `make setup TORCH=torch`).
gpu-bench: setup
	$(BIN)/python -m benchmarks.gpu_bench

# The sections a lent GPU's minutes allow, under a time budget (benchmarks/device_quick.sh runs it on the device).
gpu-bench-quick: setup
	$(BIN)/python -m benchmarks.gpu_bench --quick

lint: setup
	$(BIN)/pip install --quiet ruff
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache videos wanbot.sqlite3*
