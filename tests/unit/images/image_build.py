"""How the image tests get at tools/images/build.sh and the archives it builds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
IMAGES = REPO / "tools" / "images"
BUILD = IMAGES / "build.sh"


def image_names() -> list[str]:
    out = subprocess.run([str(BUILD), "--list"], check=True, capture_output=True, text=True).stdout
    return out.split()


NAMES = image_names()


def print_images(*names: str, env: dict | None = None, build: Path = BUILD) -> dict[str, tuple[str, Path]]:
    out = subprocess.run([str(build), "--print", *names], check=True, capture_output=True, text=True, env=env).stdout
    result = {}
    for line in out.splitlines():
        name, ref, archive = line.split(" ")
        result[name] = (ref, Path(archive))
    return result


def archives(*names: str) -> dict[str, tuple[str, Path]]:
    """name -> (ref, archive) of the images named (every image when none is), built now where an archive is
    missing."""
    printed = print_images(*names)
    if not all(archive.is_file() for _ref, archive in printed.values()):
        result = subprocess.run([str(BUILD), *names], capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"tools/images/build.sh {' '.join(names)} failed:\n{result.stderr[-6000:]}"
    return printed


def contract(name: str) -> dict:
    with open(IMAGES / name / "contract.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)
