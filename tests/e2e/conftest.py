"""The whole stack in real containers, on the local cluster's real node (`make e2e`).

The session fixture ``stack`` runs the site playbook once with inventories/e2e (NFS server, PVs, etcd, Galera,
WordPress, MySQL replication, every pod on the real node, from the images built here), and leaves the stack running in
namespace ``kubess`` for the checks, which look from inside the pods and through the Services. ``make e2e-down`` stops
everything. Passwords are read from the stack's Secrets and handed to the clients on their standard input, never on
a command line, so no failure message can print one.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from localcluster import REPO, play_recap  # noqa: E402 pylint: disable=wrong-import-position
from realnode import RealNode, real_node_session  # noqa: E402 pylint: disable=wrong-import-position

INVENTORY = REPO / "inventories" / "e2e" / "hosts.yml"
SITE = REPO / "playbooks" / "site.yml"
TEARDOWN = REPO / "playbooks" / "teardown.yml"
NAMESPACE = "kubess"
NFS_ROOT = Path("/srv/kubess-nfs") / NAMESPACE
OUTPUT = REPO / "tests" / "output"


@dataclass
class SiteRun:
    """One run of the site playbook: its exit status, duration and play recap."""

    returncode: int
    seconds: float
    log: Path
    recap: dict[str, dict[str, int]]

    @property
    def changed(self) -> int:
        return sum(host["changed"] for host in self.recap.values())

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def run_site(env: dict[str, str], name: str, *extra: str, playbook: Path = SITE) -> SiteRun:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log = OUTPUT / f"e2e-site-{name}.log"
    start = time.monotonic()
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.run(["ansible-playbook", "-i", str(INVENTORY), str(playbook), *extra], cwd=REPO, env=env,
                              stdout=fh, stderr=subprocess.STDOUT, check=False, timeout=3600)
    seconds = time.monotonic() - start
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"\nkubess e2e: {playbook.name} exited {proc.returncode} after {seconds:.1f} s\n")
    return SiteRun(proc.returncode, seconds, log, play_recap(log.read_text(errors="replace")))


@dataclass
class Stack:
    """The running stack: kubectl, exec into its pods, its Secrets, SQL and etcdctl from inside the pods."""

    node: RealNode
    namespace: str
    first_run: SiteRun

    def kubectl(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.node.cluster.kubectl(*args, **kwargs)

    def get(self, *args: str) -> dict:
        return self.node.cluster.get_json(*args, "-n", self.namespace)

    def exec(self, pod: str, *argv: str, container: str | None = None, stdin: str | None = None,
             check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        args = ["exec", "-n", self.namespace] + (["-i"] if stdin is not None else []) + [pod]
        args += (["-c", container] if container else []) + ["--", *argv]
        return self.kubectl(*args, input=stdin, check=check, timeout=timeout)

    def secret(self, name: str, key: str) -> str:
        data = self.get("secret", name)["data"]
        return base64.b64decode(data[key]).decode()

    def sql(self, pod: str, statement: str, *, password: str, user: str = "root", database: str | None = None,
            container: str | None = None, client: str = "mariadb", check: bool = True) -> list[list[str]]:
        """Rows of ``statement`` run by the database client inside ``pod``, over its local socket; the password goes
        through the client's standard input as an option file."""
        options = f"[client]\nuser={user}\npassword={password}\n"
        argv = [client, "--defaults-extra-file=/dev/stdin", "--batch", "--skip-column-names", "-e", statement]
        if database:
            argv.append(database)
        done = self.exec(pod, *argv, container=container, stdin=options, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"{client} in {pod} failed ({done.returncode}) on {statement!r}: {done.stderr.strip()}")
        return [line.split("\t") for line in done.stdout.splitlines()]

    def etcdctl(self, pod: str, *args: str, endpoints: list[str] | None = None, check: bool = True):
        # The member's own client port over TLS unless told; the pod's ETCDCTL_CACERT/CERT/KEY give the certificates
        # (a --cacert/--cert/--key flag here would clash with them: etcdctl refuses both).
        argv = ["etcdctl", f"--endpoints={','.join(endpoints or ['https://127.0.0.1:2379'])}"] + list(args)
        return self.exec(pod, *argv, check=check)

    def pods(self, selector: str) -> list[dict]:
        return self.get("pods", "-l", selector)["items"]

    def wait_for(self, predicate, timeout: float = 300, what: str = "condition"):
        return self.node.cluster.wait_for(predicate, timeout=timeout, what=what, interval=1)

    def deployment_settled(self, name: str) -> bool:
        """Every replica of the Deployment updated and Ready, none more or less."""
        status = self.get("deployment", name)["status"]
        return status.get("readyReplicas", 0) == status.get("updatedReplicas", 0) == status.get("replicas", -1)

    def ready(self, pod: str) -> bool:
        try:
            obj = self.get("pod", pod)
        except subprocess.CalledProcessError:
            return False
        return any(c["type"] == "Ready" and c["status"] == "True" for c in obj["status"].get("conditions", []))


@pytest.fixture(scope="session")
def node() -> RealNode:
    yield from real_node_session()


@pytest.fixture(scope="session")
def stack(node: RealNode) -> Stack:
    env = dict(node.cluster.env)
    env.setdefault("ANSIBLE_FORCE_COLOR", "0")
    run = run_site(env, "first")
    print(f"\nsite playbook (first run of this session): rc={run.returncode} in {run.seconds:.1f} s, "
          f"changed={run.changed}, log {run.log}")
    if run.returncode != 0:
        pytest.fail(f"the site playbook failed on the real node (log {run.log}):\n{run.tail()}", pytrace=False)
    return Stack(node=node, namespace=NAMESPACE, first_run=run)


def json_of(done: subprocess.CompletedProcess) -> dict:
    return json.loads(done.stdout)
