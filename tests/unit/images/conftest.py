"""Fixtures of the image tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from image_build import BUILD, print_images


@pytest.fixture(scope="session")
def built() -> dict[str, tuple[str, Path]]:
    """name -> (ref, archive) of every image, built now where the archive is missing."""
    printed = print_images()
    if not all(archive.is_file() for _ref, archive in printed.values()):
        result = subprocess.run([str(BUILD)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"tools/images/build.sh failed:\n{result.stderr[-6000:]}"
    return printed
