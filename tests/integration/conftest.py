"""Fixtures for tests on the local cluster (tools/localcluster).

The session fixture ``cluster`` reuses a running local cluster, or starts one and then stops, at the
end of the session, only what it started.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from localcluster import (  # noqa: E402 pylint: disable=wrong-import-position
    AUDIT_LOG, CLUSTER_SH, KUBECONFIG, REPO, STATE, Cluster, cluster_env, process_running,
)

__all__ = ["AUDIT_LOG", "CLUSTER_SH", "KUBECONFIG", "REPO", "STATE", "Cluster"]


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    env = cluster_env()
    running = subprocess.run([str(CLUSTER_SH), "status"], check=False, capture_output=True, text=True).returncode == 0
    if not running:
        subprocess.run([str(CLUSTER_SH), "up"], check=True)
    env["KUBECONFIG"] = str(KUBECONFIG)
    yield Cluster(env=env, kubeconfig=KUBECONFIG, audit_log=AUDIT_LOG)
    if not running:
        pids = [p.read_text().strip() for p in (STATE / "kwok/clusters/kubess/pids").glob("*.pid")]
        subprocess.run([str(CLUSTER_SH), "down"], check=True)
        left = [pid for pid in pids if process_running(pid)]
        assert not left, f"cluster.sh down left these cluster processes running: {left}"


@pytest.fixture
def namespace(cluster: Cluster):
    """A fresh namespace for one test, deleted (with what is in it) when the test ends."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
