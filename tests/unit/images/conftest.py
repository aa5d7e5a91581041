"""Fixtures of the image tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from image_build import archives


@pytest.fixture(scope="session")
def built() -> dict[str, tuple[str, Path]]:
    """name -> (ref, archive) of every image, built now where the archive is missing."""
    return archives()
