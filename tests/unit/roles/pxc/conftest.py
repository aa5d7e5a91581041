"""Fixtures of the pxc tests: the local MariaDB Galera image's root, for the tests against a real mariadbd.

The image is the one tools/images/build.sh makes (kubess.local/mariadb-galera, the official mariadb:10.11 image's
contract), built now when its archive is not in the cache (needs root and the Debian archive), and unpacked once.
The helpers that run its programs are the image tests' (tests/unit/images/image_root.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

IMAGE_TESTS = Path(__file__).resolve().parents[2] / "images"
sys.path.insert(0, str(IMAGE_TESTS))

from image_archive import ImageArchive  # noqa: E402
from image_build import archives  # noqa: E402


@pytest.fixture(scope="session")
def mariadb_root(tmp_path_factory) -> Path:
    """The unpacked root of kubess.local/mariadb-galera, with the /etc/hosts a kubelet would write."""
    _ref, archive = archives("mariadb-galera")["mariadb-galera"]
    root = tmp_path_factory.mktemp("pxc-mariadb-rootfs")
    ImageArchive(archive).unpack(root)
    return root
