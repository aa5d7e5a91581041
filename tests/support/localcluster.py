"""The local cluster (tools/localcluster) as the test suites see it: paths, a kubectl handle, the audit log.

Shared by tests/integration (the simulated nodes) and tests/node (the real node).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO / "tools" / "localcluster" / "cluster.sh"
STATE = REPO / ".localcluster"
KUBECONFIG = STATE / "kubeconfig"
AUDIT_LOG = STATE / "audit.log"


def cluster_env() -> dict[str, str]:
    out = subprocess.run([str(CLUSTER_SH), "env"], check=True, capture_output=True, text=True).stdout
    env = dict(os.environ)
    for line in out.splitlines():
        key, _sep, value = line.removeprefix("export ").partition("=")
        env[key] = value.replace("$PATH", os.environ.get("PATH", ""))
    return env


@dataclass
class Cluster:
    """A handle on the running local cluster."""

    env: dict[str, str]
    kubeconfig: Path
    audit_log: Path

    def kubectl(self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        # errors="replace": what a command run in a pod prints may hold bytes that are not UTF-8 (a TLS peer's first
        # Galera message after an openssl s_client handshake), and must not fail the reading of the rest.
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
            env=self.env, check=check, capture_output=True, text=True, errors="replace", input=input, timeout=timeout,
        )

    def apply(self, manifest: str, namespace: str | None = None) -> None:
        args = ["apply", "-f", "-"] + (["-n", namespace] if namespace else [])
        self.kubectl(*args, input=manifest)

    def get_json(self, *args: str) -> dict:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def audit_events(self, since: float = 0.0) -> list[dict]:
        """Audit events (ResponseComplete stage) whose request arrived at or after ``since`` (epoch seconds)."""
        events = []
        with open(self.audit_log, encoding="utf-8") as fh:
            for line in fh:
                ev = json.loads(line)
                if ev.get("stage") != "ResponseComplete":
                    continue
                if _epoch(ev["requestReceivedTimestamp"]) >= since:
                    events.append(ev)
        return events

    def wait_for(self, predicate, timeout: float = 60, what: str = "condition", interval: float = 0.2):
        """Poll ``predicate`` until it returns a truthy value; fail with ``what`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)  # polling interval of a condition wait with a deadline, not a synchronisation sleep
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


def play_recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP of an ansible-playbook run: {host: {"ok": n, "changed": n, "failed": n, ...}}."""
    recap = {}
    for line in output.splitlines():
        match = re.match(r"^(\S+)\s+:\s+(.*)$", line)
        if match and "ok=" in match.group(2):
            recap[match.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))}
    return recap


def _epoch(ts: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def process_running(pid: str) -> bool:
    """A process that exists and is not a zombie (an exited child not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
