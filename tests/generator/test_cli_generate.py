"""`wanbot generate`: one clip from the command line onto disk."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from PIL import Image

from generator import generate
from generator.contract.encode import probe_mp4
from generator.contract.mux import probe_audio
from generator.contract.options import GeneratorSettings


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="wanbot")
    generate.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["generate", *argv])


def test_generate_writes_the_clip_and_prints_the_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "clip.mp4"
    args = parse("a lighthouse in a storm", "--ar", "9:16", "--seconds", "1", "--seed", "42", "--out", str(out))
    assert generate.run(args, GeneratorSettings(device="cpu")) == 0
    info = probe_mp4(out.read_bytes())
    assert (info.width, info.height, info.frames, info.fps, info.codec) == (32, 64, 17, 16.0, "h264")
    assert capsys.readouterr().out.strip() == f"{out} (seed 42)"


def test_generate_from_an_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "first.png"
    Image.new("RGB", (200, 200), "purple").save(image)
    out = tmp_path / "clip.mp4"
    args = parse("it starts to rain", "--image", str(image), "--res", "720p", "--out", str(out))
    assert generate.run(args, GeneratorSettings(device="cpu")) == 0
    info = probe_mp4(out.read_bytes())
    assert (info.width, info.height, info.frames) == (64, 64, 81)
    assert "(seed " in capsys.readouterr().out


def test_generate_with_a_soundtrack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "clip.mp4"
    args = parse("surf", "--sound", "waves and gulls", "--seconds", "2", "--seed", "4", "--out", str(out))
    assert generate.run(args, GeneratorSettings(device="cpu", audio="tiny")) == 0
    audio, video = probe_audio(out.read_bytes()), probe_mp4(out.read_bytes())
    assert audio is not None and abs(audio.duration_s - video.frames / video.fps) <= 1 / 16
    assert generate.run(parse("surf", "--audio", "--out", str(out)), GeneratorSettings(device="cpu")) == 2
    assert "need a soundtrack preset" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--res", "1080p"], "resolution '1080p' is not one of them"),
    (["--image", "missing.png"], "No such file"),
    (["--image", "notes.png"], "not an image I can read"),
])
def test_generate_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                    message: str) -> None:
    (tmp_path / "notes.png").write_text("not a picture")
    argv = [str(tmp_path / arg) if arg.endswith(".png") else arg for arg in argv]
    args = parse("a cat", *argv, "--out", str(tmp_path / "clip.mp4"))
    assert generate.run(args, GeneratorSettings(device="cpu")) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "clip.mp4").exists()


def test_seed_out_of_range_is_an_argument_error() -> None:
    with pytest.raises(SystemExit):
        parse("a cat", "--seed", str(2**32), "--out", "clip.mp4")
