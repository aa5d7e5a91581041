"""Fixtures for tests on the real node of the local cluster (tools/localcluster/node.sh).

The session fixture ``node`` reuses a running real node, or starts it (and the control plane if needed), and at
the end stops only what it started. Pods meant for the real node select it and tolerate its taint
(``RealNode.pod_spec``); images come from tools/images and are never pulled.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from localcluster import REPO  # noqa: E402 pylint: disable=wrong-import-position
from realnode import NODE_ENV, RealNode, real_node_session  # noqa: E402 pylint: disable=wrong-import-position

__all__ = ["NODE_ENV", "REPO", "RealNode"]


@pytest.fixture(scope="session")
def node() -> RealNode:
    yield from real_node_session()


@pytest.fixture
def namespace(node: RealNode):
    """A fresh namespace for one test, deleted (with what is in it) when the test ends."""
    name = f"n-{uuid.uuid4().hex[:8]}"
    node.cluster.kubectl("create", "namespace", name)
    yield name
    node.cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
