"""The GPU benchmark: its FLOP model, its random real-size components, and a tiny run on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from diffusers import WanTransformer3DModel
from transformers import UMT5Config, UMT5EncoderModel

from benchmarks.gpu_bench import (
    QUICK_BUDGET_S,
    Bench,
    Row,
    build_transformer,
    fastest_combination,
    main,
    parse,
    relative_error,
)
from benchmarks.gpu_bench import transformer_inputs as inputs_for
from benchmarks.random_weights import declare, materialize
from benchmarks.wan_shapes import A14B_TRANSFORMER, TI2V_5B_TRANSFORMER, UMT5_XXL, workloads
from generator.contract.options import GeneratorSettings

ROOT = Path(__file__).parents[2]


def test_the_flop_model_gives_the_issue_s_figures() -> None:
    """6.5e15 FLOP per A14B pass at 1280×720×81 (75,600 tokens), 1.7e15 at 832×480 (32,760 tokens)."""
    by_name = {workload.name: workload for workload in workloads(tiny=False)}
    assert by_name["A14B 720p"].tokens == 75_600 and by_name["A14B 480p"].tokens == 32_760
    assert by_name["A14B 720p"].flops_per_pass == pytest.approx(6.5e15, rel=0.01)
    assert by_name["A14B 480p"].flops_per_pass == pytest.approx(1.7e15, rel=0.02)
    assert by_name["5B 704p"].latent_shape == (48, 31, 44, 80) and by_name["5B 704p"].tokens == 27_280
    # The floor at 800 TFLOP/s for 40 steps × 2 passes: about 650 s at 720p and 170 s at 480p.
    assert 80 * by_name["A14B 720p"].flops_per_pass / 800e12 == pytest.approx(650, rel=0.01)
    assert by_name["A14B 720p"].passes(four_step=False) == 80 and by_name["5B 704p"].passes(four_step=False) == 100
    assert by_name["A14B 720p"].passes(four_step=True) == 4


@pytest.mark.parametrize(("build", "billions"), [
    (lambda: WanTransformer3DModel(**A14B_TRANSFORMER), 14.29),
    (lambda: WanTransformer3DModel(**TI2V_5B_TRANSFORMER), 5.00),
    (lambda: UMT5EncoderModel(UMT5Config(**UMT5_XXL)), 5.68),
])
def test_real_size_components_are_declared_without_memory(build, billions: float) -> None:
    """The real configs have the real parameter counts, and declaring them allocates nothing."""
    module = declare(build, torch.bfloat16, ("scale_shift_table", "norm1"))
    parameters = list(module.parameters())
    assert sum(p.numel() for p in parameters) / 1e9 == pytest.approx(billions, abs=0.01)
    assert {p.device.type for p in parameters} == {"meta"}


def test_a_seed_gives_every_variant_the_same_weights_and_fp8_storage_stays_close() -> None:
    bench = Bench(parse(["--tiny", "--device", "cpu"]))
    workload = workloads(tiny=True)[0]
    first = build_transformer(bench, workload, GeneratorSettings(device="cpu"))
    second = build_transformer(bench, workload, GeneratorSettings(device="cpu"))
    pairs = zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    assert first.scale_shift_table.dtype == torch.float32 and first.blocks[0].ffn.net[2].weight.dtype == torch.bfloat16
    # fp8 storage is settled before the weights exist; the generator refuses it on a CPU, the mechanism runs anyway.
    stored_fp8 = build_transformer(bench, workload, GeneratorSettings(device="cpu", memory_mode="fp8"))
    assert stored_fp8.blocks[0].ffn.net[2].weight.dtype == torch.float8_e4m3fn
    inputs = inputs_for(bench, workload)
    with torch.inference_mode():
        reference, output = first(**inputs)[0], stored_fp8(**inputs)[0]
    assert 0 < relative_error(output, reference) < 0.05
    assert relative_error(torch.full_like(reference, float("nan")), reference) == float("inf")


def test_tied_embeddings_stay_one_tensor() -> None:
    config = UMT5Config(vocab_size=50, d_model=8, d_kv=4, d_ff=16, num_layers=1, num_heads=2)
    encoder = materialize(declare(lambda: UMT5EncoderModel(config), torch.float32), "cpu", seed=1)
    assert encoder.shared.weight is encoder.encoder.embed_tokens.weight


def test_the_fastest_combination_takes_one_attention_backend_and_one_fp8_format() -> None:
    default = Row("transformer", "w", "diffusers default", seconds=10.0, safe=True)
    variants = [
        Row("transformer", "w", "a", seconds=8.0, safe=True, settings={"attention_backend": "flash"}),
        Row("transformer", "w", "b", seconds=7.0, safe=True, settings={"attention_backend": "_flash_3"}),
        Row("transformer", "w", "c", seconds=9.0, safe=True, settings={"compile_blocks": True}),
        Row("transformer", "w", "d", seconds=9.5, safe=True, settings={"memory_mode": "fp8"}),
        Row("transformer", "w", "e", seconds=6.0, safe=True, settings={"fp8_matmul": True}),
        Row("transformer", "w", "f", seconds=1.0, safe=False, settings={"attention_backend": "sage"}),
        Row("transformer", "w", "g", seconds=11.0, safe=True, settings={"attention_backend": "xformers"}),
    ]
    assert fastest_combination(default, variants) == {"fp8_matmul": True, "attention_backend": "_flash_3",
                                                      "compile_blocks": True}
    # Compiled blocks cannot trace fp8 storage's casting: whichever of the two is faster is kept, alone.
    assert fastest_combination(default, [row for row in variants if row.variant != "e"]) == {
        "attention_backend": "_flash_3", "compile_blocks": True}
    stored = Row("transformer", "w", "h", seconds=8.5, safe=True, settings={"memory_mode": "fp8"})
    assert fastest_combination(default, [stored, variants[2]]) == {"memory_mode": "fp8"}


def test_a_tiny_run_on_the_cpu_prints_and_writes_every_section(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_bench", "--tiny", "--repeats", "1", "--device",
                           "cpu", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| section | workload | variant |" in done.stdout and "Projected seconds per clip" in done.stdout
    [result] = tmp_path.glob("gpu_bench-tiny-*.json")
    report = json.loads(result.read_text())
    assert report["machine"]["torch"] == torch.__version__ and result.with_suffix(".md").exists()
    rows = report["rows"]
    sections = {(row["section"], row["workload"]) for row in rows}
    for workload in ("A14B 480p", "A14B 720p", "5B 704p"):
        for section in ("transformer", "vae", "mp4 encode", "memory"):
            assert (section, workload) in sections
    defaults = [row for row in rows if row["variant"] in ("diffusers default", "fp32 (default)")]
    assert len(defaults) == 6 and all(row["safe"] and row["seconds"] > 0 and row["rel_error"] == 0 for row in defaults)
    passes = [row for row in rows if row["section"] == "transformer" and row["seconds"]]
    assert all(row["tflops"] > 0 and row["rel_error"] < 0.05 for row in passes)
    skipped = {row["variant"]: row["note"] for row in rows if row["note"].startswith("skipped")}
    assert "compile_blocks needs a CUDA GPU" in skipped["compiled blocks"]  # the generator's own refusal
    assert "needs a CUDA GPU" in skipped["capped at 31.5 GiB"]
    [text] = [row for row in rows if row["section"] == "text encoder"]
    assert text["safe"] and text["seconds"] > 0
    projections = report["projections"]
    assert [(p["workload"], p["recipe"]) for p in projections] == [
        (w, r) for w in ("A14B 480p", "A14B 720p", "5B 704p") for r in ("full", "4-step")]
    for projection in projections:
        assert projection["best_s"] <= projection["default_s"] and projection["floor_s"] > 0
        assert 0 < projection["outside_transformer_pct"] < 100


def test_a_quick_tiny_run_takes_its_sections_and_says_what_its_budget_left_out(tmp_path: Path, capsys) -> None:
    main(["--quick", "--tiny", "--device", "cpu", "--out", str(tmp_path / "whole")])
    [result] = (tmp_path / "whole").glob("gpu_bench-quick-tiny-*.json")
    report = json.loads(result.read_text())
    assert report["args"]["repeats"] == 1 and report["args"]["budget_s"] == QUICK_BUDGET_S
    rows = report["rows"]
    assert not [row for row in rows if "budget" in row["note"]]
    measured = {(row["section"], row["workload"], row["variant"]) for row in rows if row["seconds"]}
    for workload in ("A14B 720p", "A14B 480p"):
        assert {("transformer", workload, "diffusers default"), ("attention", workload, "_native_math"),
                ("transformer", workload, "attention _native_math (fastest alone)")} <= measured
        assert ("mp4 encode", workload) in {(section, name) for section, name, _ in measured}
    decodes = {(name, variant) for section, name, variant in measured if section == "vae"}
    assert decodes == {(name, variant) for name in ("A14B 720p", "A14B 480p", "5B 704p")
                       for variant in ("fp32 (default)", "bf16", "fp32 tiled")}
    assert ("text encoder", "UMT5, 2 × 512 tokens", "bf16") in measured
    skipped = {(row["workload"], row["variant"]): row["note"] for row in rows if row["note"].startswith("skipped")}
    assert "compile_blocks needs a CUDA GPU" in skipped["A14B 720p", "compiled blocks"]
    assert "needs a CUDA GPU" in skipped["A14B 480p", "fp8 matmul (torchao)"]
    assert "needs a CUDA GPU" in skipped["5B 704p", "capped at 23.5 GiB"]
    assert [(p["workload"], p["recipe"]) for p in report["projections"]] == [
        (w, r) for w in ("A14B 480p", "A14B 720p") for r in ("full", "4-step")]
    capsys.readouterr()

    main(["--quick", "--tiny", "--device", "cpu", "--budget-s", "0", "--out", str(tmp_path / "none")])
    [result] = (tmp_path / "none").glob("gpu_bench-quick-tiny-*.json")
    rows = json.loads(result.read_text())["rows"]
    assert len(rows) == 17 and all(row["note"] == "skipped: the 0 s time budget was spent" for row in rows)
    assert "time budget of 0 s spent: skipped 17 sections" in capsys.readouterr().out
    assert "skipped: the 0 s time budget was spent" in result.with_suffix(".md").read_text()
