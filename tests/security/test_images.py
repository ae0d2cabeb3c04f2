"""Both Docker images run as a non-root user, and the worker reads its models through a read-only mount.
(Checked on the files: building CUDA images has no place in the test suite.)"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def stages(dockerfile: str) -> dict[str, list[str]]:
    """Each named build stage's instructions, continuation lines joined."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in dockerfile.replace("\\\n", " ").splitlines():
        line = line.strip()
        if match := re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE):
            current = found.setdefault(match.group(1), [])
        elif line and not line.startswith("#"):
            current.append(line)
    return found


def test_both_images_end_as_a_non_root_user() -> None:
    built = stages((ROOT / "Dockerfile").read_text())
    for target in ("bot", "worker"):
        users = [line.split(None, 1)[1] for line in built[target] if line.upper().startswith("USER ")]
        assert users and users[-1] not in ("root", "0", "0:0"), f"the {target} image runs as root"


def test_the_worker_mounts_its_models_read_only() -> None:
    """Every bind or volume onto /models in compose.yaml (only the worker has one) carries `:ro`."""
    mounts = re.findall(r"^\s*-\s*([^\s#]+:/models\S*)", (ROOT / "compose.yaml").read_text(), re.MULTILINE)
    assert mounts and all(mount.endswith(":ro") for mount in mounts), mounts
