"""How long a Wan 2.2 clip takes on this machine, part by part, and how close that is to the hardware.

Builds real-size components with random weights straight on the device (an A14B expert, the
TI2V-5B transformer, the Wan 2.1 and 2.2 VAEs, UMT5-XXL) and times, in one run: one transformer
pass per workload under the diffusers defaults and under every speed option the generator offers
(each checked against the default's output on the same inputs), the VAE decode (fp32, bf16,
tiled), text encoding and the MP4 encode. It prints tables and projects seconds per clip for the
full recipe (40 or 50 steps × 2 guidance passes) and a 4-step distilled one, against the FLOP floor.
On a CUDA machine it also caps the process's GPU memory in child runs to show what fits a 32 GB
or 24 GB card. `--tiny` runs the same code at the tiny preset's sizes (the test suite's smoke run).

`--quick` fits a lent GPU's few minutes: per A14B workload the default pass, the attention backend
fastest in a one-call probe, fp8 matmuls and compiled blocks; the VAE decodes (fp32, bf16, tiled),
UMT5 and the MP4 encode; then, while its time budget (`--budget-s`) lasts, the fastest safe
combination and the memory probes. Sections that would start after the budget is spent are
skipped, and the results say so.

    .venv/bin/python -m benchmarks.gpu_bench                # CUDA, real sizes
    .venv/bin/python -m benchmarks.gpu_bench --quick        # CUDA, real sizes, about 7 minutes
    .venv/bin/python -m benchmarks.gpu_bench --tiny         # anywhere, in seconds
"""

from __future__ import annotations

import argparse
import copy
import datetime
import gc
import importlib.metadata
import json
import math
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import diffusers
import numpy as np
import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from diffusers.models.attention_dispatch import AttentionBackendName, dispatch_attention_fn
from transformers import UMT5Config, UMT5EncoderModel

from benchmarks.random_weights import declare, materialize
from benchmarks.wan_shapes import TEXT_TOKENS, Workload, text_encoder_config, workloads
from generator.contract.encode import encode_mp4
from generator.contract.errors import GeneratorConfigError
from generator.contract.options import GeneratorSettings
from generator.contract.presets import get_preset
from generator.engine.loader import tune_transformer, tune_vae
from generator.engine.machine import CPU_ATTENTION_BACKENDS, validate_for

RESULTS = Path(__file__).parent / "results"
BATCHED = "guidance passes batched (per pass)"  # would batching the cond and uncond passes pay? (B=2 ÷ 2)
COMBINED = "fastest safe combination"
UMT5_WORKLOAD = "UMT5, 2 × 512 tokens"
SEED = 1234
QUICK_BUDGET_S = 360.0  # no section starts after this; the longest (a compiled 720p pass) adds about 90 s
# Attention kernels worth trying on a GPU; the ones fetched from the Hub at run time are left out.
GPU_ATTENTION_BACKENDS = ("_native_cudnn", "_native_flash", "_native_efficient", "flash", "_flash_3", "sage",
                          "xformers")
# Memory probes: (workload, GiB cap, settings) — A14B on a 32 GB card, TI2V-5B on 24 GB; the caps leave what
# the CUDA context and library workspaces take outside PyTorch's allocator.
MEMORY_PROBES = (("A14B 480p", 31.5, {"memory_mode": "fp8"}), ("A14B 720p", 31.5, {"memory_mode": "fp8"}),
                 ("5B 704p", 23.5, {}))
COMPILED = ("compiled blocks", {"compile_blocks": True})
FP8_STORAGE = ("fp8 storage", {"memory_mode": "fp8"})
FP8_MATMUL = ("fp8 matmul (torchao)", {"fp8_matmul": True})


@dataclass
class Row:
    """One timed thing: a section, the workload it ran on, the variant, and what was measured."""

    section: str
    workload: str
    variant: str
    seconds: float | None = None
    tflops: float | None = None
    peak_gib: float | None = None
    rel_error: float | None = None  # against the section's reference output on the same inputs
    safe: bool | None = None  # finite and within --max-rel-error
    settings: dict[str, Any] | None = None
    note: str = ""


@dataclass(frozen=True)
class Section:
    """A unit of the run: the time budget is checked before it, and the results are written after it."""

    name: str
    workload: str
    variant: str
    call: Callable[[], object]


class Bench:
    """The run's device, dtype and limits, and the rows measured so far."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.device: str = args.device
        self.dtype = getattr(torch, args.dtype)
        self.repeats: int = args.repeats
        self.max_rel_error: float = args.max_rel_error
        self.peak_tflops: float = args.peak_tflops
        self.quick: bool = args.quick
        self.deadline = None if args.budget_s is None else time.monotonic() + args.budget_s
        self.rows: list[Row] = []
        self.references: dict[str, torch.Tensor] = {}  # each workload's default pass output, for its variants

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    def left(self) -> float:
        """Seconds of the time budget left (infinite without one)."""
        return math.inf if self.deadline is None else self.deadline - time.monotonic()

    def timed(self, call: Callable[[], Any], warmup: bool = True) -> tuple[float, float | None, Any]:
        """Median seconds of `repeats` calls after a warm-up (compiles, autotunes), peak GiB, last output."""
        with torch.inference_mode():
            if warmup:
                call()
            self._sync()
            if self.cuda:
                torch.cuda.reset_peak_memory_stats(self.device)
            times = []
            for _ in range(self.repeats):
                started = time.perf_counter()
                output = call()
                self._sync()
                times.append(time.perf_counter() - started)
        peak = torch.cuda.max_memory_allocated(self.device) / 2**30 if self.cuda else None
        return statistics.median(times), peak, output

    def refusal(self, workload: Workload, settings: GeneratorSettings) -> str | None:
        """Why the generator would refuse these settings on this machine, or None."""
        try:
            validate_for(settings, get_preset(workload.preset), self.device)
        except GeneratorConfigError as error:
            return str(error).split(": ", 1)[1]
        return None

    def judged(self, output: torch.Tensor, reference: torch.Tensor) -> tuple[float, bool]:
        error = relative_error(output, reference)
        return error, error <= self.max_rel_error

    def free(self) -> None:
        torch.compiler.reset()  # each variant compiles afresh, as a new worker would (and under the recompile cap)
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)


def relative_error(output: torch.Tensor, reference: torch.Tensor) -> float:
    """‖output − reference‖ / ‖reference‖ in float32; infinite when the output has a NaN or inf."""
    output, reference = output.float(), reference.float()
    if not torch.isfinite(output).all():
        return float("inf")
    return ((output - reference).norm() / reference.norm().clamp_min(1e-12)).item()


# Transformer ---------------------------------------------------------------------------------------


def build_transformer(bench: Bench, workload: Workload, settings: GeneratorSettings) -> WanTransformer3DModel:
    """An expert with the settings' speed options; fp8 storage is settled before any weight exists."""
    model = declare(lambda: WanTransformer3DModel(**workload.transformer), bench.dtype,
                    WanTransformer3DModel._keep_in_fp32_modules)
    store_fp8_first = settings.memory_mode == "fp8"
    if store_fp8_first:
        tune_transformer(model, settings, bench.dtype)
    materialize(model, bench.device, SEED)
    if not store_fp8_first:
        tune_transformer(model, settings, bench.dtype)
    return model


def transformer_inputs(bench: Bench, workload: Workload, batch: int = 1) -> dict[str, Any]:
    generator = torch.Generator(bench.device).manual_seed(SEED)
    latents = torch.randn((1, *workload.latent_shape), generator=generator, device=bench.device)
    text = torch.randn((1, TEXT_TOKENS, workload.transformer["text_dim"]), generator=generator, device=bench.device)
    timestep = torch.full((1, workload.tokens) if workload.expand_timesteps else (1,), 500.0, device=bench.device)
    return {"hidden_states": latents.to(bench.dtype).repeat(batch, 1, 1, 1, 1), "timestep": timestep.repeat(batch, 1)
            if workload.expand_timesteps else timestep.repeat(batch),
            "encoder_hidden_states": text.to(bench.dtype).repeat(batch, 1, 1), "return_dict": False}


def attention_backends(bench: Bench) -> tuple[str, ...]:
    return GPU_ATTENTION_BACKENDS if bench.cuda else tuple(b for b in CPU_ATTENTION_BACKENDS if b != "native")


def transformer_variants(bench: Bench) -> list[tuple[str, dict[str, Any]]]:
    attention = [(f"attention {b}", {"attention_backend": b}) for b in attention_backends(bench)]
    return [("diffusers default", {}), *attention, COMPILED, FP8_STORAGE, FP8_MATMUL]


def transformer_passes(bench: Bench, workload: Workload) -> list[Section]:
    """One pass per variant, then the fastest safe combination and the two guidance passes batched; quick: the
    default, the probe's attention backend, fp8 matmuls and compiled blocks (the combination comes later)."""
    def section(variant: str, call: Callable[[], object]) -> Section:
        return Section("transformer", workload.name, variant, call)

    default = section("diffusers default", lambda: default_pass(bench, workload))
    if bench.quick:
        return [default, section("attention (fastest alone)", lambda: best_attention_pass(bench, workload)),
                *(section(v[0], lambda v=v: variant_pass(bench, workload, *v)) for v in (FP8_MATMUL, COMPILED))]
    _, *variants = transformer_variants(bench)
    return [default, *(section(v[0], lambda v=v: variant_pass(bench, workload, *v)) for v in variants),
            section(COMBINED, lambda: combination_pass(bench, workload)),
            section(BATCHED, lambda: batched_pass(bench, workload))]


def default_pass(bench: Bench, workload: Workload) -> None:
    _, output = run_pass(bench, workload, "diffusers default", {}, None)
    if output is not None:
        bench.references[workload.name] = output


def variant_pass(bench: Bench, workload: Workload, variant: str, options: dict[str, Any], batch: int = 1) -> Row:
    """A pass checked against the default's output; skipped when the default failed (nothing to check against)."""
    reference = bench.references.get(workload.name)
    if reference is None:
        row = Row("transformer", workload.name, variant, settings=options, note="skipped: the default pass failed")
        bench.rows.append(row)
        return row
    return run_pass(bench, workload, variant, options, reference, batch)[0]


def best_attention_pass(bench: Bench, workload: Workload) -> None:
    """The whole pass under the attention backend that was fastest alone: one pass instead of one per backend."""
    best = probe_attention(bench, workload)
    if best is None:
        bench.rows.append(Row("transformer", workload.name, "attention", note="skipped: no backend ran safely alone"))
        return
    variant_pass(bench, workload, f"attention {best.variant} (fastest alone)", {"attention_backend": best.variant})


def probe_attention(bench: Bench, workload: Workload) -> Row | None:
    """One self-attention call at the workload's size per backend the generator accepts, checked against
    PyTorch's SDPA (the diffusers default); returns the fastest safe one."""
    heads, head_dim = workload.transformer["num_attention_heads"], workload.transformer["attention_head_dim"]
    generator = torch.Generator(bench.device).manual_seed(SEED)
    query, key, value = (torch.randn((1, workload.tokens, heads, head_dim), generator=generator,
                                     device=bench.device).to(bench.dtype) for _ in range(3))
    with torch.inference_mode():
        reference = dispatch_attention_fn(query, key, value, backend=AttentionBackendName.NATIVE)
    best: Row | None = None
    for backend in attention_backends(bench):
        row = Row("attention", workload.name, backend, settings={"attention_backend": backend})
        bench.rows.append(row)
        refusal = bench.refusal(workload, GeneratorSettings(device=bench.device, attention_backend=backend))
        if refusal:
            row.note = f"skipped: {refusal}"
            continue
        try:
            name = AttentionBackendName(backend)
            row.seconds, row.peak_gib, output = bench.timed(
                lambda name=name: dispatch_attention_fn(query, key, value, backend=name))
        except Exception as error:  # as in run_pass: a kernel that refuses these shapes is a result
            row.note = f"failed: {type(error).__name__}: {error}"[:300]
            continue
        row.tflops = 4 * workload.tokens**2 * heads * head_dim / row.seconds / 1e12
        row.rel_error, row.safe = bench.judged(output, reference)
        if row.safe and (best is None or row.seconds < (best.seconds or math.inf)):
            best = row
    query = key = value = reference = output = None  # type: ignore[assignment]
    bench.free()
    return best


def combination_pass(bench: Bench, workload: Workload) -> None:
    combination = measured_combination(bench, workload)
    if len(combination) > 1:
        variant_pass(bench, workload, COMBINED, combination)
    else:
        bench.rows.append(Row("transformer", workload.name, COMBINED, settings=combination,
                              note="skipped: fewer than two options beat the default alone"))


def batched_pass(bench: Bench, workload: Workload) -> None:
    row = variant_pass(bench, workload, BATCHED, measured_combination(bench, workload), batch=2)
    row.note = (row.note + " " if row.note else "") + "(not a generator option: left out of projections)"


def measured_combination(bench: Bench, workload: Workload) -> dict[str, Any]:
    """fastest_combination over this workload's passes so far (the default's row comes first)."""
    rows = [row for row in bench.rows if row.section == "transformer" and row.workload == workload.name
            and row.variant not in (COMBINED, BATCHED)]
    default, *variants = rows
    return fastest_combination(default, variants)


def run_pass(bench: Bench, workload: Workload, variant: str, options: dict[str, Any],
             reference: torch.Tensor | None, batch: int = 1) -> tuple[Row, torch.Tensor | None]:
    """Time one pass; without a reference this is the default, whose output becomes the reference."""
    settings = GeneratorSettings(device=bench.device, **options)
    row = Row("transformer", workload.name, variant, settings=options)
    bench.rows.append(row)
    refusal = bench.refusal(workload, settings)
    if refusal:
        row.note = f"skipped: {refusal}"
        return row, None
    try:
        model = build_transformer(bench, workload, settings)
        inputs = transformer_inputs(bench, workload, batch)
        seconds, row.peak_gib, output = bench.timed(lambda: model(**inputs)[0])
    except Exception as error:  # a kernel that fails on these shapes is a result, not the end of the run
        row.note = f"failed: {type(error).__name__}: {error}"[:300]
        return row, None
    finally:
        model = inputs = None  # type: ignore[assignment]
        bench.free()
    row.seconds = seconds / batch
    row.tflops = workload.flops_per_pass / row.seconds / 1e12
    if settings.memory_mode == "fp8":
        row.note = "random weights lie below fp8's normal range: the error overstates a trained model's"
    output = output[:1]
    if reference is None:
        row.rel_error, row.safe = 0.0, bool(torch.isfinite(output).all())
    else:
        row.rel_error, row.safe = bench.judged(output, reference)
    return row, output


def fastest_combination(default: Row, variants: list[Row]) -> dict[str, Any]:
    """Every safe option that beat the default alone, fastest first, leaving out what the generator refuses
    together: a second attention backend, a second fp8 format, compiled blocks over fp8 storage."""
    def fp8(options: dict[str, Any]) -> bool:
        return options.get("memory_mode") == "fp8" or bool(options.get("fp8_matmul"))

    def clashes(options: dict[str, Any]) -> bool:
        merged = {**combination, **options}
        return (("attention_backend" in options and "attention_backend" in combination)
                or (fp8(options) and fp8(combination))
                or (merged.get("memory_mode") == "fp8" and bool(merged.get("compile_blocks"))))

    winners = [row for row in variants if row.safe and row.seconds and default.seconds
               and row.seconds < default.seconds]
    combination: dict[str, Any] = {}
    for row in sorted(winners, key=lambda row: row.seconds or 0.0):
        if not clashes(row.settings or {}):
            combination.update(row.settings or {})
    return combination


# VAE, text encoder, MP4 ----------------------------------------------------------------------------


VAE_VARIANTS = (("fp32 (default)", {}), ("bf16", {"vae_dtype": "bfloat16"}), ("fp32 tiled", {"vae_tiling": True}),
                ("bf16 tiled", {"vae_dtype": "bfloat16", "vae_tiling": True}))


def bench_vae(bench: Bench, workload: Workload) -> np.ndarray:
    """Decode the workload's latents under each VAE option (quick: no warm-up, no bf16 tiled); returns the default
    decode as uint8 frames."""
    torch.manual_seed(SEED)
    with torch.device(bench.device):
        vae = AutoencoderKLWan(**workload.vae).eval()
    generator = torch.Generator(bench.device).manual_seed(SEED)
    latents = torch.randn((1, *workload.latent_shape), generator=generator, device=bench.device)
    reference: torch.Tensor | None = None
    for variant, options in VAE_VARIANTS[:3] if bench.quick else VAE_VARIANTS:
        tuned = copy.deepcopy(vae)
        tune_vae(tuned, GeneratorSettings(**options))
        seconds, peak, video = bench.timed(lambda model=tuned: model.decode(latents.to(model.dtype),
                                                                            return_dict=False)[0],
                                           warmup=not bench.quick)
        row = Row("vae", workload.name, variant, seconds, peak_gib=peak, settings=options)
        if reference is None:
            reference, row.rel_error, row.safe = video.float(), 0.0, bool(torch.isfinite(video).all())
        else:
            row.rel_error, row.safe = bench.judged(video, reference)
        bench.rows.append(row)
        tuned = video = None  # type: ignore[assignment]
        bench.free()
    assert reference is not None
    frames = ((reference[0].permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return frames.cpu().numpy()


def bench_text_encoder(bench: Bench, tiny: bool) -> None:
    """UMT5 over a prompt and the negative prompt, 512 tokens each, as every job starts."""
    config = UMT5Config(**text_encoder_config(tiny))
    encoder = materialize(declare(lambda: UMT5EncoderModel(config), bench.dtype), bench.device, SEED)
    generator = torch.Generator(bench.device).manual_seed(SEED)
    ids = torch.randint(0, config.vocab_size, (2, TEXT_TOKENS), generator=generator, device=bench.device)
    # WanPipeline encodes the prompt and the negative prompt in two calls.
    seconds, peak, output = bench.timed(lambda: torch.cat([encoder(input_ids=ids[i:i + 1]).last_hidden_state
                                                           for i in range(2)]))
    finite = bool(torch.isfinite(output).all())
    bench.rows.append(Row("text encoder", UMT5_WORKLOAD, "bf16" if bench.dtype == torch.bfloat16
                          else str(bench.dtype), seconds, peak_gib=peak, safe=finite))
    encoder = output = None  # type: ignore[assignment]
    bench.free()


def bench_encode(bench: Bench, workload: Workload) -> None:
    """The decode, then the worker's MP4 encode of its frames (random-weight output: harder to compress than film)."""
    frames = bench_vae(bench, workload)
    fps = get_preset(workload.preset).fps
    seconds, _, data = bench.timed(lambda: encode_mp4(frames, fps), warmup=False)
    bench.rows.append(Row("mp4 encode", workload.name, f"H.264 CRF, {frames.shape[2]}×{frames.shape[1]}×"
                          f"{frames.shape[0]}", seconds, note=f"{len(data) / 2**20:.1f} MiB"))


# Memory probes (child processes, CUDA only) --------------------------------------------------------


def bench_probe(bench: Bench, args: argparse.Namespace, name: str, cap_gib: float, options: dict[str, Any]) -> None:
    """One memory probe in a child process, given no longer than the time budget has left."""
    row = Row("memory", name, f"capped at {cap_gib} GiB", settings=options)
    bench.rows.append(row)
    if not bench.cuda:
        row.note = "skipped: a memory cap needs a CUDA GPU"
        return
    command = [sys.executable, "-m", "benchmarks.gpu_bench", "--probe", name, "--cap-gib", str(cap_gib),
               "--probe-settings", json.dumps(options), "--device", bench.device, "--dtype", args.dtype]
    timeout = min(args.probe_timeout_s, bench.left())
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              cwd=Path(__file__).parent.parent)
    except subprocess.TimeoutExpired:
        row.note = f"failed: no answer within {timeout:.0f} s"
        return
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        row.note = f"failed: exit {done.returncode}: {done.stderr.strip()[-300:]}"
        return
    found = json.loads(lines[-1])
    row.seconds, row.peak_gib, row.note = found.get("seconds"), found.get("peak_gib"), found["note"]


def probe(args: argparse.Namespace) -> None:
    """In a child: what the worker keeps on the card (experts, UMT5, VAE) under the cap, one pass each, a decode."""
    bench = Bench(args)
    total = torch.cuda.get_device_properties(bench.device).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, args.cap_gib * 2**30 / total), bench.device)
    workload = next(w for w in workloads(tiny=False) if w.name == args.probe)
    settings = GeneratorSettings(device=bench.device, **json.loads(args.probe_settings))
    experts = 2 if get_preset(workload.preset).boundary_ratio is not None else 1
    resident = f"{experts} expert(s) + UMT5-XXL + VAE resident, {settings.memory_mode} mode"
    try:
        models = [build_transformer(bench, workload, settings) for _ in range(experts)]
        encoder = materialize(declare(lambda: UMT5EncoderModel(UMT5Config(**text_encoder_config(False))),
                                      bench.dtype), bench.device, SEED)
        with torch.device(bench.device):
            vae = AutoencoderKLWan(**workload.vae).eval()
        inputs = transformer_inputs(bench, workload)
        ids = torch.zeros((1, TEXT_TOKENS), dtype=torch.long, device=bench.device)
        latents = torch.randn((1, *workload.latent_shape), device=bench.device)

        def job() -> None:
            encoder(input_ids=ids)
            for model in models:
                model(**inputs)
            vae.decode(latents, return_dict=False)

        seconds, peak, _ = bench.timed(job, warmup=False)
        result = {"seconds": seconds, "peak_gib": peak, "note": f"fits: {resident}"}
    except torch.OutOfMemoryError:
        result = {"note": f"out of memory: {resident}"}
    print(json.dumps(result))


# Projection and tables -----------------------------------------------------------------------------


def projections(bench: Bench, work: list[Workload]) -> list[dict[str, Any]]:
    """Seconds per clip from the measured parts: default options versus the fastest safe ones."""
    text = next((row.seconds for row in bench.rows if row.section == "text encoder"), None) or 0.0
    table = []
    for workload in work:
        passes = [r for r in bench.rows if r.section == "transformer" and r.workload == workload.name and r.seconds
                  and r.variant != BATCHED]
        decodes = [r for r in bench.rows if r.section == "vae" and r.workload == workload.name and r.seconds]
        encode = next((r.seconds for r in bench.rows if r.section == "mp4 encode" and r.workload == workload.name), 0.0)
        if not passes or not decodes:
            continue
        default_pass, default_decode = passes[0].seconds or 0.0, decodes[0].seconds or 0.0
        best_pass = min((r.seconds or 0.0 for r in passes if r.safe), default=default_pass)
        best_decode = min((r.seconds or 0.0 for r in decodes if r.safe), default=default_decode)
        for recipe, four_step in (("full", False), ("4-step", True)):
            count = workload.passes(four_step)
            outside = text + best_decode + (encode or 0.0)
            best = count * best_pass + outside
            floor = count * workload.flops_per_pass / (bench.peak_tflops * 1e12)
            table.append({"workload": workload.name, "recipe": recipe, "passes": count,
                          "default_s": count * default_pass + text + default_decode + (encode or 0.0),
                          "best_s": best, "floor_s": floor, "best_over_floor": best / floor if floor else None,
                          "outside_transformer_pct": 100 * outside / best})
    return table


def markdown(bench: Bench, projected: list[dict[str, Any]]) -> str:
    def number(value: float | None, digits: int = 3) -> str:
        return "" if value is None else f"{value:.{digits}g}"

    lines = ["| section | workload | variant | s | TFLOP/s | peak GiB | rel. error | safe | note |",
             "|---|---|---|---:|---:|---:|---:|---|---|"]
    for row in bench.rows:
        safe = "" if row.safe is None else ("yes" if row.safe else "NO")
        lines.append(f"| {row.section} | {row.workload} | {row.variant} | {number(row.seconds, 4)} | "
                     f"{number(row.tflops)} | {number(row.peak_gib)} | {number(row.rel_error, 2)} | {safe} | "
                     f"{row.note} |")
    lines += ["", f"Projected seconds per clip (FLOP floor at {bench.peak_tflops:g} TFLOP/s):", "",
              "| workload | recipe | passes | diffusers defaults s | fastest safe s | floor s | ÷ floor | "
              "outside transformer % |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {p['workload']} | {p['recipe']} | {p['passes']} | {p['default_s']:.4g} | {p['best_s']:.4g} | "
              f"{p['floor_s']:.4g} | {number(p['best_over_floor'])} | {p['outside_transformer_pct']:.3g} |"
              for p in projected]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    return {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "gpu": gpu,
            "driver": nvidia_driver(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "diffusers": diffusers.__version__, "torchao": installed("torchao")}


def nvidia_driver() -> str | None:
    """The driver's version, which results must name: torch reports only the CUDA runtime's."""
    if shutil.which("nvidia-smi") is None:
        return None
    done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                          text=True, timeout=60)
    first = done.stdout.strip().split("\n")[0]
    return first if done.returncode == 0 and first else None


def installed(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def sections(bench: Bench, args: argparse.Namespace, work: list[Workload]) -> list[Section]:
    """The run in order; quick puts what the projections need first, then what only refines them."""
    def decode(workload: Workload, encode: bool = True) -> Section:
        if encode:
            return Section("vae", workload.name, "decode, MP4 encode", lambda: bench_encode(bench, workload))
        return Section("vae", workload.name, "decode", lambda: bench_vae(bench, workload))

    def memory(name: str, cap_gib: float, options: dict[str, Any]) -> Section:
        return Section("memory", name, f"capped at {cap_gib} GiB",
                       lambda: bench_probe(bench, args, name, cap_gib, options))

    text = Section("text encoder", UMT5_WORKLOAD, "encode", lambda: bench_text_encoder(bench, args.tiny))
    probes = [memory(*probe) for probe in MEMORY_PROBES]
    if not bench.quick:
        return [*(section for w in work for section in (*transformer_passes(bench, w), decode(w))), text, *probes]
    by_name = {workload.name: workload for workload in work}
    a720, a480, ti2v = by_name["A14B 720p"], by_name["A14B 480p"], by_name["5B 704p"]
    combinations = [Section("transformer", w.name, COMBINED, lambda w=w: combination_pass(bench, w))
                    for w in (a720, a480)]
    return [*transformer_passes(bench, a720), *transformer_passes(bench, a480), decode(a720), text, decode(a480),
            decode(ti2v, encode=False), *combinations, *probes]


def run(args: argparse.Namespace) -> None:
    """Every section, writing the results after each so a run cut short keeps what it measured."""
    bench = Bench(args)
    work = workloads(args.tiny)
    about = machine()
    run_name = "gpu_bench-quick" if args.quick else "gpu_bench"
    stem = f"{run_name}-{'tiny' if args.tiny else about['gpu'].replace(' ', '-')}-{about['date'][:10]}"
    args.out.mkdir(parents=True, exist_ok=True)
    skipped = []
    started = time.monotonic()
    for section in sections(bench, args, work):
        print(f"[{time.monotonic() - started:5.0f} s] {section.name} {section.workload}: {section.variant}", flush=True)
        if bench.left() <= 0:
            skipped.append(f"{section.name} {section.workload} {section.variant}")
            bench.rows.append(Row(section.name, section.workload, section.variant,
                                  note=f"skipped: the {args.budget_s:g} s time budget was spent"))
        else:
            section.call()
        table = write(bench, work, about, args, stem)
    print(table)
    if skipped:
        print(f"\ntime budget of {args.budget_s:g} s spent: skipped {len(skipped)} sections ({'; '.join(skipped)})")
    print(f"\nwritten: {args.out / stem}.json and .md")


def write(bench: Bench, work: list[Workload], about: dict[str, Any], args: argparse.Namespace, stem: str) -> str:
    projected = projections(bench, work)
    table = markdown(bench, projected)
    report = {"machine": about, "args": vars(args), "rows": [asdict(row) for row in bench.rows],
              "projections": projected}
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str))
    (args.out / f"{stem}.md").write_text(f"# {stem}\n\n```\n{json.dumps(about)}\n```\n\n{table}\n")
    return table


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny preset's sizes (CPU smoke run)")
    parser.add_argument("--quick", action="store_true", help="the sections a lent GPU's minutes allow")
    parser.add_argument("--budget-s", type=float, help=f"start no section after this (quick: {QUICK_BUDGET_S:g})")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"))
    parser.add_argument("--repeats", type=int, help="timed calls after the warm-up (default 3; quick: 1)")
    parser.add_argument("--max-rel-error", type=float, default=0.05, help="an option is safe within this")
    parser.add_argument("--peak-tflops", type=float, default=800.0, help="the FLOP floor's rate (H100 dense bf16)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and markdown results")
    parser.add_argument("--probe-timeout-s", type=int, default=900)
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # child run: one memory probe
    parser.add_argument("--cap-gib", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--probe-settings", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.budget_s is None and args.quick:
        args.budget_s = QUICK_BUDGET_S
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.probe:
        probe(args)
        return
    run(args)


if __name__ == "__main__":
    main()
