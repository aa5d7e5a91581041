"""The local cluster's real node (tools/localcluster/node.sh) as the test suites see it.

Shared by tests/node (the node itself) and tests/e2e (the whole stack on it).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from localcluster import AUDIT_LOG, CLUSTER_SH, KUBECONFIG, REPO, STATE, Cluster, cluster_env, process_running

NODE_SH = REPO / "tools" / "localcluster" / "node.sh"
IMAGES_SH = REPO / "tools" / "images" / "build.sh"


def _shell_vars(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


NODE_ENV = _shell_vars(REPO / "tools" / "localcluster" / "node.env")


@dataclass
class RealNode:
    """The running real node: its name and network, the images it holds, and the cluster it belongs to."""

    cluster: Cluster
    name: str
    images: dict[str, str]
    env: dict[str, str] = field(default_factory=lambda: dict(NODE_ENV))

    def pod_spec(self, containers: list[dict], **extra) -> dict:
        """A pod spec that runs on the real node only, as a restricted-profile, non-root pod."""
        spec = {
            "nodeSelector": {"kubernetes.io/hostname": self.name},
            "tolerations": [{"key": self.env["NODE_TAINT"], "operator": "Exists", "effect": "NoSchedule"}],
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "runAsGroup": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "terminationGracePeriodSeconds": 2,
            "containers": [
                {
                    "imagePullPolicy": "IfNotPresent",
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                } | container
                for container in containers
            ],
        }
        spec.update(extra)
        return spec

    def crictl(self, *argv: str) -> str:
        """crictl against the node's runtime (its CRI endpoint)."""
        return subprocess.run([self.env["CRICTL"], *argv], env=self.env_for_runtime(), check=True,
                              capture_output=True, text=True, timeout=60).stdout

    def runtime(self, *argv: str) -> str:
        """ctr against the node's containerd, in the namespace the kubelet uses."""
        return subprocess.run([self.env["CTR"], *argv], env=self.env_for_runtime(), check=True,
                              capture_output=True, text=True, timeout=60).stdout

    def env_for_runtime(self) -> dict[str, str]:
        return {**self.cluster.env, **{k: v for k, v in self.env.items() if k.startswith(("CONTAINER", "CONTAINERD"))}}

    def in_node(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a command in the node's own network namespace (the node's host network)."""
        return subprocess.run(
            ["nsenter", f"--net=/run/netns/{self.env['NODE_NETNS']}", "--", *argv],
            capture_output=True, text=True, timeout=timeout, check=False,
        )


def _runtime_env() -> dict[str, str]:
    """CONTAINER_RUNTIME_ENDPOINT, CONTAINERD_ADDRESS, ... and the paths of crictl and ctr, from node.sh env."""
    out = subprocess.run([str(NODE_SH), "env"], check=True, capture_output=True, text=True).stdout
    env = {}
    for line in out.splitlines():
        key, _sep, value = line.removeprefix("export ").partition("=")
        if key == "PATH":
            crictl_dir, ctr_dir = value.split(":")[:2]
            env["CRICTL"], env["CTR"] = f"{crictl_dir}/crictl", f"{ctr_dir}/ctr"
        else:
            env[key] = value
    return env


def _images() -> dict[str, str]:
    out = subprocess.run([str(IMAGES_SH), "--print"], check=True, capture_output=True, text=True).stdout
    return {name: ref for name, ref, _archive in (line.split() for line in out.splitlines() if line.strip())}


def _status(script: Path) -> bool:
    return subprocess.run([str(script), "status"], check=False, capture_output=True, text=True).returncode == 0


def real_node_session():
    """Reuse a running real node, or start it (and the control plane if needed); stop only what was started."""
    cluster_was_running = _status(CLUSTER_SH)
    node_was_running = cluster_was_running and _status(NODE_SH)
    if not node_was_running:
        subprocess.run([str(NODE_SH), "up"], check=True)
    env = cluster_env()
    env["KUBECONFIG"] = str(KUBECONFIG)
    cluster = Cluster(env=env, kubeconfig=KUBECONFIG, audit_log=AUDIT_LOG)
    yield RealNode(cluster=cluster, name=NODE_ENV["NODE_NAME"], images=_images(), env={**NODE_ENV, **_runtime_env()})
    if not node_was_running:
        pids = [p.read_text().strip() for p in (STATE / "node" / "pids").glob("*.pid")]
        subprocess.run([str(NODE_SH), "down"], check=True)
        left = [pid for pid in pids if process_running(pid)]
        assert not left, f"node.sh down left these node processes running: {left}"
    if not cluster_was_running:
        subprocess.run([str(CLUSTER_SH), "down"], check=True)
