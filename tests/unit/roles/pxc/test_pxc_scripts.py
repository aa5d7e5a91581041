"""Tests of the scripts that run inside the Galera pods (roles/pxc/files/), for both flavours.

Each script runs here with what a pod would see: the environment the role's pod template gives the container
(role_data.container_env, from the role's own data), its hostname, its data directory (empty, or holding a
grastate.dat), the bootstrap ConfigMap's files, and the network as seen through ``socat`` (a stand-in on the PATH
answers from a directory of "open ports": ``<host>:<port>`` files, whose content is what the port sends). The
servers, clients and image entrypoints are stand-ins (standins.py, standin_images/) that behave like the real
ones in what the scripts depend on; test_pxc_mariadb.py runs the same scripts against a real mariadbd.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from role_data import FILES, NS, SECRETS, container_env

HERE = Path(__file__).resolve().parent
ENTRYPOINT = FILES / "pxc-entrypoint.sh"
READINESS = FILES / "pxc-readiness.sh"
LIVENESS = FILES / "pxc-liveness.sh"
INITDB = FILES / "pxc-initdb.sh"
BASH = shutil.which("bash") or "/bin/bash"
STANDINS = HERE / "standins.py"
STANDIN_IMAGES = HERE / "standin_images"

ROOT_PASSWORD = SECRETS["root-password"]
MONITOR_PASSWORD = SECRETS["monitor-password"]
UUID = "7e3c5c4a-1b2d-11ef-9a6e-0242ac120002"


def host(ordinal: int) -> str:
    return f"pxc-{ordinal}.pxc.{NS}.svc.cluster.local"


def grastate(uuid: str, seqno: int, safe: int) -> str:
    return textwrap.dedent(
        f"""\
        # GALERA saved state
        version: 2.1
        uuid:    {uuid}
        seqno:   {seqno}
        safe_to_bootstrap: {safe}
        """
    )


SOCAT_STUB = r"""#!/bin/bash
printf '%s\n' "$*" >>"$STUB_LOG_DIR/socat.calls"
for a in "$@"; do
  case $a in
    TCP-LISTEN:*) exec sleep 300 ;;
    TCP:*) t=${a#TCP:}; t=${t%%,*} ;;
  esac
done
f="$STUB_NET_DIR/$t"
[ -e "$f" ] || exit 1
cat "$f"
"""

PROGRAMS = ("mysqld", "mariadbd", "mysql", "mariadb", "mysqladmin", "mariadb-admin")


class Pod:
    """A pod's view of the world, built in a temporary directory, for one flavour."""

    def __init__(self, tmp: Path, hostname: str, replicas: int = 3, flavor: str = "percona"):
        self.tmp = tmp
        self.flavor = flavor
        self.bin = tmp / "bin"
        self.net = tmp / "net"
        self.logs = tmp / "logs"
        self.datadir = tmp / "datadir"
        self.state = tmp / "state"
        self.run = tmp / "run"
        self.initdb = tmp / "initdb"
        for d in (self.bin, self.net, self.logs, self.datadir, self.state, self.run, self.initdb):
            d.mkdir(parents=True)
        socat = self.bin / "socat"
        socat.write_text(SOCAT_STUB, encoding="utf-8")
        socat.chmod(0o755)
        standins = f"#!{sys.executable}\n" + STANDINS.read_text(encoding="utf-8")
        for name in PROGRAMS:
            (self.bin / name).write_text(standins, encoding="utf-8")
            (self.bin / name).chmod(0o755)
        # The image's entrypoint where the role says it is: a name on the PATH (mariadb), or a path.
        env = container_env(flavor, SECRETS, NS)
        image_entrypoint = env["KUBESS_IMAGE_ENTRYPOINT"]
        if "/" in image_entrypoint:
            self.image_entrypoint = tmp / "image" / image_entrypoint.lstrip("/")
            self.image_entrypoint.parent.mkdir(parents=True)
            env["KUBESS_IMAGE_ENTRYPOINT"] = str(self.image_entrypoint)
        else:
            self.image_entrypoint = self.bin / image_entrypoint
        shutil.copy(STANDIN_IMAGES / f"{flavor}-entrypoint.sh", self.image_entrypoint)
        # The role mounts pxc-initdb.sh into the image's /docker-entrypoint-initdb.d, mode 0555.
        shutil.copy(INITDB, self.initdb / "kubess-initdb.sh")
        (self.initdb / "kubess-initdb.sh").chmod(0o555)
        self.server = tmp / "server.json"
        (self.state / "replicas").write_text(f"{replicas}\n", encoding="utf-8")
        self.env = {
            **env,
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "HOSTNAME": hostname,
            "KUBESS_DATADIR": str(self.datadir),
            "KUBESS_STATE_DIR": str(self.state),
            "KUBESS_RUN_DIR": str(self.run),
            "KUBESS_POLL_INTERVAL": "0.05",
            "KUBESS_WAIT_TIMEOUT": "2",
            "STUB_NET_DIR": str(self.net),
            "STUB_LOG_DIR": str(self.logs),
            "STUB_DATADIR": str(self.datadir),
            "STUB_INITDB": str(self.initdb),
            "STUB_SERVER": str(self.server),
        }

    # --- the world -------------------------------------------------------------------------------
    def with_data(self, seqno: int = 10, safe: int = 0, uuid: str = UUID) -> "Pod":
        (self.datadir / "mysql").mkdir(exist_ok=True)
        (self.datadir / "grastate.dat").write_text(grastate(uuid, seqno, safe), encoding="utf-8")
        return self

    def galera_up(self, ordinal: int) -> None:
        (self.net / f"{host(ordinal)}:4567").write_text("", encoding="utf-8")

    def peer_state(self, ordinal: int, seqno: int = -1, empty: int = 0, safe: int = 0, uuid: str = UUID) -> None:
        line = f"ordinal={ordinal} empty={empty} uuid={uuid} seqno={seqno} safe_to_bootstrap={safe}\n"
        (self.net / f"{host(ordinal)}:4569").write_text(line, encoding="utf-8")

    def peer_empty(self, ordinal: int) -> None:
        self.peer_state(ordinal, seqno=-1, empty=1, uuid="00000000-0000-0000-0000-000000000000")

    def set_state(self, name: str, value: str) -> None:
        (self.state / name).write_text(value + "\n", encoding="utf-8")

    def serve(self, running: bool = True, status: dict | None = None, users: dict | None = None) -> None:
        """The stand-in server's state: running or not, its users and its status variables."""
        state = {"running": running, "users": {"monitor": MONITOR_PASSWORD} if users is None else users,
                 "status": status or {}}
        self.server.write_text(json.dumps(state), encoding="utf-8")

    # --- running ---------------------------------------------------------------------------------
    def run_script(self, script: Path, timeout: float = 20, **extra: str) -> subprocess.CompletedProcess:
        env = dict(self.env, **extra)
        return subprocess.run([BASH, str(script)], env=env, capture_output=True, text=True, timeout=timeout, check=False)

    def start(self, **extra: str) -> subprocess.CompletedProcess:
        return self.run_script(ENTRYPOINT, **extra)

    def popen(self, argv: list[str], **extra: str) -> subprocess.Popen:
        return subprocess.Popen(argv, env=dict(self.env, **extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    def calls(self, prog: str) -> list[dict]:
        path = self.logs / f"{prog}.calls"
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        return [json.loads(line) if prog != "socat" else {"argv": line.split(" ")} for line in lines]

    def wait_for(self, condition, what: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"{what} not within {timeout} s"
            time.sleep(0.02)


@pytest.fixture
def make_pod(tmp_path):
    made = []

    def _make(hostname: str, replicas: int = 3, flavor: str = "percona") -> Pod:
        made.append(hostname)
        return Pod(tmp_path / f"{len(made)}-{hostname}-{flavor}", hostname, replicas, flavor)

    return _make


def started_with(result: subprocess.CompletedProcess) -> tuple[list[str], str]:
    """The server command the image's entrypoint finally ran, and the CLUSTER_JOIN it saw."""
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    return lines["SERVER"].split(" "), lines["CLUSTER_JOIN"]


def safe_flag(pod: Pod) -> str:
    for line in (pod.datadir / "grastate.dat").read_text(encoding="utf-8").splitlines():
        if line.startswith("safe_to_bootstrap:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("no safe_to_bootstrap line")


# --- first install ------------------------------------------------------------------------------
def test_ordinal_0_with_empty_datadir_and_no_peer_starts_a_new_cluster(make_pod):
    pod = make_pod("pxc-0")
    args, join = started_with(pod.start())
    assert args == ["mysqld", "--wsrep_node_name=pxc-0", "--wsrep_cluster_address=gcomm://",
                    "--percona_telemetry_disable=1"]
    assert join == "<unset>"


def test_ordinal_0_starts_a_new_cluster_when_every_peer_is_empty(make_pod):
    pod = make_pod("pxc-0")
    pod.peer_empty(1)
    pod.peer_empty(2)
    args = started_with(pod.start())[0]
    assert "--wsrep_cluster_address=gcomm://" in args


def test_ordinal_1_joins_the_running_member(make_pod):
    pod = make_pod("pxc-1")
    pod.galera_up(0)
    args, join = started_with(pod.start())
    assert args[:3] == ["mysqld", "--wsrep_node_name=pxc-1", f"--wsrep_cluster_address=gcomm://{host(0)}"]
    assert join == host(0)
    # A Percona joiner is not initialised: the snapshot brings the data.
    assert not (pod.datadir / "mysql").exists() and not (pod.datadir / ".kubess-initialising").exists()


def test_joiner_lists_every_running_member(make_pod):
    pod = make_pod("pxc-2")
    pod.galera_up(0)
    pod.galera_up(1)
    join = started_with(pod.start())[1]
    assert join == f"{host(0)},{host(1)}"


def test_ordinal_1_waits_until_ordinal_0_runs_then_joins(make_pod):
    pod = make_pod("pxc-1")
    pod.peer_empty(0)
    pod.peer_empty(2)
    opener = threading.Timer(0.5, pod.galera_up, args=(0,))
    opener.start()
    t0 = time.monotonic()
    result = pod.start(KUBESS_WAIT_TIMEOUT="10")
    opener.join()
    join = started_with(result)[1]
    assert join == host(0)
    assert time.monotonic() - t0 >= 0.5
    assert f"waiting for {host(0)} to start a new cluster" in result.stderr


def test_ordinal_1_never_bootstraps_on_its_own(make_pod):
    pod = make_pod("pxc-1")
    result = pod.start(KUBESS_WAIT_TIMEOUT="1")
    assert result.returncode == 1
    assert "SERVER" not in result.stdout
    assert "no bootstrap decision after 1s" in result.stderr
    assert f"waiting for the state of: {host(0)}, {host(2)}" in result.stderr


def test_single_member_cluster_bootstraps_without_peers(make_pod):
    pod = make_pod("pxc-0", replicas=1)
    args = started_with(pod.start())[0]
    assert "--wsrep_cluster_address=gcomm://" in args
    assert not [a for c in pod.calls("socat") for a in c["argv"] if a.startswith("TCP:")]  # no peer probed


# --- a running cluster always wins --------------------------------------------------------------
def test_member_with_data_rejoins_a_running_cluster_even_if_safe_to_bootstrap(make_pod):
    pod = make_pod("pxc-2").with_data(seqno=50, safe=1)
    pod.galera_up(1)
    join = started_with(pod.start())[1]
    assert join == host(1)
    assert safe_flag(pod) == "1"  # untouched


def test_running_cluster_wins_over_a_forced_ordinal(make_pod):
    pod = make_pod("pxc-2").with_data(seqno=50)
    pod.set_state("force-bootstrap-ordinal", "2")
    pod.galera_up(0)
    join = started_with(pod.start())[1]
    assert join == host(0)


# --- full outage --------------------------------------------------------------------------------
def test_member_with_safe_to_bootstrap_after_full_outage_bootstraps(make_pod):
    pod = make_pod("pxc-2").with_data(seqno=120, safe=1)
    pod.set_state("cluster-initialized", "true")
    pod.peer_state(0, seqno=100)
    pod.peer_state(1, seqno=110)
    result = pod.start()
    args, join = started_with(result)
    assert args[:3] == ["mysqld", "--wsrep_node_name=pxc-2", "--wsrep_cluster_address=gcomm://"]
    assert join == "<unset>"
    assert "safe_to_bootstrap: 1: this member bootstraps" in result.stderr


def test_member_with_safe_to_bootstrap_gives_silent_peers_a_grace_then_bootstraps_without_them(make_pod):
    # A peer not answering yet may claim safe_to_bootstrap too; one gone for good must not block recovery.
    pod = make_pod("pxc-2").with_data(seqno=120, safe=1)
    pod.set_state("cluster-initialized", "true")
    pod.peer_state(0, seqno=100)
    waiting = pod.start(KUBESS_WAIT_TIMEOUT="1")
    assert waiting.returncode == 1
    assert f"safe_to_bootstrap: 1; waiting up to 30s for the state of: {host(1)}" in waiting.stderr
    result = pod.start(KUBESS_SAFE_GRACE="1", KUBESS_WAIT_TIMEOUT="10")
    assert "--wsrep_cluster_address=gcomm://" in started_with(result)[0]
    assert f"waiting up to 1s for the state of: {host(1)}" in result.stderr


def test_a_claimant_seen_ahead_is_waited_for_even_once_it_stops_answering(make_pod):
    # The rival stops answering on the recovery port when it starts its server, before its Galera port opens: this
    # member must not take it for a member that is gone and bootstrap beside it, grace or not.
    pod = make_pod("pxc-0").with_data(seqno=100, safe=1)
    pod.set_state("cluster-initialized", "true")
    pod.peer_state(1, seqno=10)
    pod.peer_state(2, seqno=120, safe=1)
    rival = pod.net / f"{host(2)}:4569"
    remover = threading.Timer(0.3, rival.unlink)
    remover.start()
    result = pod.start(KUBESS_SAFE_GRACE="0", KUBESS_WAIT_TIMEOUT="2")
    remover.join()
    assert result.returncode == 1, result.stdout
    assert f"{host(2)} claims safe_to_bootstrap too, with seqno 120" in result.stderr
    assert f"{host(2)}, which claims safe_to_bootstrap too and is ahead, is starting: waiting to join it" in result.stderr
    assert not rival.exists() and "this member bootstraps" not in result.stderr
    # Its Galera port opens: this member joins it.
    pod.galera_up(2)
    assert started_with(pod.start(KUBESS_SAFE_GRACE="0"))[1] == host(2)


@pytest.mark.parametrize("unreadable", ["datadir", "grastate.dat"])
def test_a_member_that_cannot_read_its_volume_publishes_nothing_rather_than_an_empty_one(unreadable):
    # As the image's user (not root, who reads anything): a data directory it cannot read must not count as empty,
    # or the others would elect without it and its transactions would be lost when it joins.
    base = Path(tempfile.mkdtemp(prefix="pxc-unreadable-"))
    try:
        base.chmod(0o755)
        pod = Pod(base / "pod", "pxc-2", 3, "percona").with_data(seqno=130, safe=1)
        subprocess.run(["chown", "-R", "1001:1001", str(base)], check=True)
        (pod.datadir if unreadable == "datadir" else pod.datadir / "grastate.dat").chmod(0)
        result = subprocess.run(["setpriv", "--reuid=1001", "--regid=1001", "--clear-groups", BASH, str(ENTRYPOINT)],
                                env=dict(pod.env, KUBESS_WAIT_TIMEOUT="1"), capture_output=True, text=True,
                                timeout=20, check=False)
        assert result.returncode == 1, result.stderr
        assert "cannot read" in result.stderr and "as uid 1001: this member's position is unknown" in result.stderr
        assert not (pod.run / "state").exists()
        assert (pod.run / "phase").read_text().strip() == "deciding"
    finally:
        subprocess.run(["chmod", "-R", "u+rwX", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("mine, theirs, bootstraps", [
    ((0, 100), (2, 120), False),   # the other claimant is more advanced
    ((2, 120), (0, 100), True),
    ((1, 77), (2, 77), True),      # equal: the lowest ordinal
    ((2, 77), (1, 77), False),
])
def test_of_two_members_claiming_safe_to_bootstrap_only_the_most_advanced_bootstraps(make_pod, mine, theirs,
                                                                                     bootstraps):
    (ordinal, seqno), (other, other_seqno) = mine, theirs
    pod = make_pod(f"pxc-{ordinal}").with_data(seqno=seqno, safe=1)
    pod.set_state("cluster-initialized", "true")
    pod.peer_state(other, seqno=other_seqno, safe=1)
    pod.peer_state(3 - ordinal - other, seqno=10)
    result = pod.start(KUBESS_WAIT_TIMEOUT="1")
    if bootstraps:
        assert "--wsrep_cluster_address=gcomm://" in started_with(result)[0]
    else:
        assert result.returncode == 1
        assert (f"{host(other)} claims safe_to_bootstrap too, with seqno {other_seqno} (this member: {seqno}): "
                "waiting for it to bootstrap") in result.stderr
        assert safe_flag(pod) == "1"


def test_others_wait_for_the_member_marked_safe_to_bootstrap(make_pod):
    pod = make_pod("pxc-0").with_data(seqno=100)
    pod.set_state("cluster-initialized", "true")
    pod.peer_state(1, seqno=90)
    pod.peer_state(2, seqno=100, safe=1)
    result = pod.start(KUBESS_WAIT_TIMEOUT="1")
    assert result.returncode == 1
    assert f"waiting for the most advanced member {host(2)} (seqno 100)" in result.stderr


@pytest.mark.parametrize("flavor", ["percona", "mariadb"])
def test_crash_most_advanced_member_by_wsrep_recover_bootstraps(make_pod, flavor):
    # Crash: every grastate.dat says seqno -1, safe_to_bootstrap 0; wsrep-recover gives 120 here. The server of
    # either flavour accepts the options it is given (MariaDB's has no --log-error-verbosity).
    pod = make_pod("pxc-1", flavor=flavor).with_data(seqno=-1, safe=0)
    pod.set_state("cluster-initialized", "true")
    pod.peer_state(0, seqno=100)
    pod.peer_state(2, seqno=90)
    result = pod.start(STUB_RECOVERED=f"{UUID}:120")
    args = started_with(result)[0]
    assert "--wsrep_cluster_address=gcomm://" in args
    # MariaDB's entrypoint, unlike Percona's, does not hand the recovered position to the server: the script does.
    assert (f"--wsrep_start_position={UUID}:120" in args) == (flavor == "mariadb")
    server = {"percona": "mysqld", "mariadb": "mariadbd"}[flavor]
    assert any("--wsrep-recover" in c["argv"] for c in pod.calls(server))
    assert safe_flag(pod) == "1"  # the server refuses to bootstrap without it
    assert f"recovered position {UUID}:120" in result.stderr
    # It published what it found, for its peers to compare.
    assert (pod.run / "state").read_text().split() == [
        "ordinal=1", "empty=0", f"uuid={UUID}", "seqno=120", "safe_to_bootstrap=0"
    ]


def test_crash_less_advanced_member_waits_and_keeps_its_flag(make_pod):
    pod = make_pod("pxc-0").with_data(seqno=-1, safe=0)
    pod.set_state("cluster-initialized", "true")
    pod.peer_state(1, seqno=120)
    pod.peer_state(2, seqno=90)
    result = pod.start(STUB_RECOVERED=f"{UUID}:100", KUBESS_WAIT_TIMEOUT="1")
    assert result.returncode == 1
    assert f"waiting for the most advanced member {host(1)} (seqno 120)" in result.stderr
    assert safe_flag(pod) == "0"


def test_crash_then_joins_once_the_most_advanced_member_runs(make_pod):
    pod = make_pod("pxc-0").with_data(seqno=100)
    pod.set_state("cluster-initialized", "true")
    pod.peer_state(1, seqno=120)
    pod.peer_state(2, seqno=90)
    opener = threading.Timer(0.4, pod.galera_up, args=(1,))
    opener.start()
    result = pod.start(KUBESS_WAIT_TIMEOUT="10")
    opener.join()
    join = started_with(result)[1]
    assert join == host(1)


def test_equal_seqno_lowest_ordinal_bootstraps(make_pod):
    pod = make_pod("pxc-1").with_data(seqno=77)
    pod.set_state("cluster-initialized", "true")
    pod.peer_state(0, seqno=60)
    pod.peer_state(2, seqno=77)
    args = started_with(pod.start())[0]
    assert "--wsrep_cluster_address=gcomm://" in args

    other = make_pod("pxc-2").with_data(seqno=77)
    other.set_state("cluster-initialized", "true")
    other.peer_state(0, seqno=60)
    other.peer_state(1, seqno=77)
    result = other.start(KUBESS_WAIT_TIMEOUT="1")
    assert result.returncode == 1
    assert f"most advanced member {host(1)}" in result.stderr


def test_outage_waits_for_every_member_before_electing(make_pod):
    pod = make_pod("pxc-2").with_data(seqno=500)
    pod.set_state("cluster-initialized", "true")
    pod.peer_state(0, seqno=10)
    result = pod.start(KUBESS_WAIT_TIMEOUT="1")
    assert result.returncode == 1
    assert f"waiting for the state of: {host(1)}" in result.stderr
    assert "pxc_force_bootstrap_ordinal" in result.stderr


def test_forced_ordinal_bootstraps_even_if_behind(make_pod):
    pod = make_pod("pxc-2").with_data(seqno=5)
    pod.set_state("cluster-initialized", "true")
    pod.set_state("force-bootstrap-ordinal", "2")
    pod.peer_state(0, seqno=100)
    args = started_with(pod.start())[0]
    assert "--wsrep_cluster_address=gcomm://" in args
    assert safe_flag(pod) == "1"


def test_other_members_wait_for_the_forced_ordinal(make_pod):
    pod = make_pod("pxc-0").with_data(seqno=100, safe=1)
    pod.set_state("force-bootstrap-ordinal", "2")
    result = pod.start(KUBESS_WAIT_TIMEOUT="1")
    assert result.returncode == 1
    assert f"force-bootstrap-ordinal is 2: waiting for {host(2)}" in result.stderr
    assert safe_flag(pod) == "1"


def test_force_set_while_waiting_is_picked_up_live(make_pod):
    # The force file comes from a ConfigMap volume: the kubelet updates it in a running pod.
    pod = make_pod("pxc-1").with_data(seqno=30)
    pod.set_state("cluster-initialized", "true")
    pod.peer_state(0, seqno=40)  # pxc-2 never answers: no automatic election
    setter = threading.Timer(0.4, pod.set_state, args=("force-bootstrap-ordinal", "1"))
    setter.start()
    result = pod.start(KUBESS_WAIT_TIMEOUT="10")
    setter.join()
    args = started_with(result)[0]
    assert "--wsrep_cluster_address=gcomm://" in args


@pytest.mark.parametrize("value", ["", "-1", "none", "two"])
def test_unset_or_invalid_force_is_ignored(make_pod, value):
    pod = make_pod("pxc-0")
    pod.set_state("force-bootstrap-ordinal", value)
    args = started_with(pod.start())[0]
    assert "--wsrep_cluster_address=gcomm://" in args  # first-install rule, not a forced one


# --- never an empty cluster over data -----------------------------------------------------------
def test_empty_ordinal_0_does_not_start_a_new_cluster_when_a_peer_holds_data(make_pod):
    pod = make_pod("pxc-0")
    pod.peer_state(1, seqno=300)
    pod.peer_empty(2)
    result = pod.start(KUBESS_WAIT_TIMEOUT="1")
    assert result.returncode == 1
    assert f"{host(1)} hold data" in result.stderr
    assert f"most advanced member {host(1)} (seqno 300)" in result.stderr


def test_empty_ordinal_0_of_an_initialized_cluster_never_starts_a_new_one(make_pod):
    pod = make_pod("pxc-0")
    pod.set_state("cluster-initialized", "true")
    result = pod.start(KUBESS_WAIT_TIMEOUT="1")
    assert result.returncode == 1
    assert "SERVER" not in result.stdout


def test_initialized_cluster_with_every_volume_empty_needs_the_operator(make_pod):
    pod = make_pod("pxc-0")
    pod.set_state("cluster-initialized", "true")
    pod.peer_empty(1)
    pod.peer_empty(2)
    result = pod.start(KUBESS_WAIT_TIMEOUT="1")
    assert result.returncode == 1
    assert "refusing to start an empty cluster over lost volumes" in result.stderr


# --- the image's entrypoint: what the role hands it ---------------------------------------------
def test_every_volume_lost_then_forced_bootstrap_initialises_a_new_data_directory(make_pod):
    # Every member waits with an empty volume; the operator forces ordinal 0, whose Percona image must then
    # initialise (users included) before its server starts. With PXC_SERVICE in the environment, as the role
    # set it before, the image's entrypoint took that for its Kubernetes mode instead (below).
    pod = make_pod("pxc-0")
    pod.set_state("cluster-initialized", "true")
    pod.set_state("force-bootstrap-ordinal", "0")
    pod.peer_empty(1)
    pod.peer_empty(2)
    result = pod.start()
    args, join = started_with(result)
    assert args[:3] == ["mysqld", "--wsrep_node_name=pxc-0", "--wsrep_cluster_address=gcomm://"]
    assert join == "<unset>"
    assert "MySQL init process done" in result.stdout
    assert (pod.datadir / "mysql").is_dir()
    assert (pod.logs / "image-users").read_text().split() == ["monitor", MONITOR_PASSWORD]

    again = make_pod("pxc-0", flavor="percona")
    again.set_state("force-bootstrap-ordinal", "0")
    old = again.start(PXC_SERVICE="pxc")
    assert old.returncode == 127 and "peer-list" in old.stderr
    assert not (again.datadir / "mysql").exists()


def test_percona_telemetry_is_turned_off(make_pod):
    pod = make_pod("pxc-0")
    args = started_with(pod.start())[0]
    assert args[-1] == "--percona_telemetry_disable=1"
    assert not (pod.logs / "telemetry-agent").exists()
    # Without the setting the image starts its telemetry agent.
    other = make_pod("pxc-0", flavor="percona")
    other.env.pop("PERCONA_TELEMETRY_DISABLE")
    assert "--percona_telemetry_disable=1" not in started_with(other.start())[0]
    assert (other.logs / "telemetry-agent").exists()


def test_image_entrypoint_runs_without_tracing_the_password(make_pod):
    pod = make_pod("pxc-0")
    result = pod.start()
    started_with(result)
    assert ROOT_PASSWORD not in result.stderr + result.stdout
    # The original, run directly, would have printed it: the test would catch a regression.
    direct = make_pod("pxc-0", flavor="percona")
    result = subprocess.run([BASH, str(direct.image_entrypoint), "mysqld"], env=direct.env, capture_output=True,
                            text=True, check=False)
    assert ROOT_PASSWORD in result.stderr


@pytest.mark.parametrize("ordinal", [0, 1])
def test_mariadb_hands_over_to_docker_entrypoint_with_its_settings(make_pod, ordinal):
    # Ordinal 0 starts a new cluster, ordinal 1 joins it; the MariaDB image initialises both (it has no Galera
    # logic): a joiner's local data is replaced by the snapshot. CLUSTER_JOIN means nothing to it.
    pod = make_pod(f"pxc-{ordinal}", flavor="mariadb")
    if ordinal:
        pod.galera_up(0)
    result = pod.start()
    args, join = started_with(result)
    address = f"gcomm://{host(0)}" if ordinal else "gcomm://"
    assert args == ["mariadbd", f"--wsrep_node_name=pxc-{ordinal}", f"--wsrep_cluster_address={address}"]
    assert join == "<unset>"
    assert "MariaDB init process done" in result.stdout
    # pxc-initdb.sh made the users the image does not make, and removed the initialisation mark.
    users = json.loads(pod.server.read_text())["users"]
    assert users == {"root": ROOT_PASSWORD, "monitor": MONITOR_PASSWORD,
                     "mariabackup": SECRETS["xtrabackup-password"]}
    assert not (pod.datadir / ".kubess-initialising").exists()
    (sql,) = [c for c in pod.calls("mariadb") if "CREATE USER" in c["stdin"]]
    assert SECRETS["xtrabackup-password"] not in " ".join(sql["argv"]) and sql["pwd"] == ROOT_PASSWORD
    # The donor's mariabackup logs in with wsrep_sst_auth, from the Secret, readable by this uid only.
    auth = pod.run / "sst-auth.cnf"
    assert auth.read_text() == f"[mysqld]\nwsrep_sst_auth=mariabackup:{SECRETS['xtrabackup-password']}\n"
    assert stat.S_IMODE(auth.stat().st_mode) == 0o600


@pytest.mark.parametrize("flavor", ["percona", "mariadb"])
def test_the_backup_user_may_log_in_from_the_backup_pods(make_pod, flavor):
    # The backup pods read a member's files from its volume and log in over the network: the backup user from any
    # host, with the Secret's password, made once the image made its own users (Percona's through its client array).
    pod = make_pod("pxc-0", flavor=flavor)
    started_with(pod.start())
    user = {"percona": "xtrabackup", "mariadb": "mariabackup"}[flavor]
    (call,) = [c for c in pod.calls({"percona": "mysql", "mariadb": "mariadb"}[flavor])
               if f"CREATE USER '{user}'@'%'" in c["stdin"]]
    assert f"IDENTIFIED BY '{SECRETS['xtrabackup-password']}'" in call["stdin"]
    assert SECRETS["xtrabackup-password"] not in " ".join(call["argv"])
    assert "GRANT RELOAD, PROCESS, LOCK TABLES" in call["stdin"] and f"TO '{user}'@'%'" in call["stdin"]
    assert json.loads(pod.server.read_text())["users"][user] == SECRETS["xtrabackup-password"]
    assert not (pod.datadir / ".kubess-initialising").exists()


def test_decide_only_prints_the_decision(make_pod):
    pod = make_pod("pxc-2")
    pod.galera_up(0)
    result = pod.start(KUBESS_DECIDE_ONLY="1")
    assert result.returncode == 0
    assert result.stdout.strip() == f"join {host(0)}"


# --- a first initialisation that never finished -------------------------------------------------
def asides(pod: Pod) -> list[Path]:
    root = pod.datadir / ".kubess-half-initialised"
    return sorted(root.iterdir()) if root.exists() else []


@pytest.mark.parametrize("flavor", ["percona", "mariadb"])
def test_a_half_initialised_data_directory_is_moved_aside_then_initialised_again(make_pod, flavor):
    pod = make_pod("pxc-0", flavor=flavor)
    # The pod is killed while the image initialises: the image made DATADIR/mysql, not yet the users.
    first = pod.start(STUB_KILL_DURING_INIT="1")
    assert first.returncode != 0
    assert (pod.datadir / "mysql").is_dir() and (pod.datadir / ".kubess-initialising").exists()
    (pod.datadir / "mysql" / "user.frm").write_text("half made")

    result = pod.start()
    started_with(result)
    (aside,) = asides(pod)
    assert aside.name.endswith("Z") and len(aside.name) == len("20260101T000000Z")
    assert (aside / "mysql" / "user.frm").read_text() == "half made"
    assert "moved what it left" in result.stderr and str(aside) in result.stderr
    # Initialised again, to the end this time.
    assert (pod.datadir / "mysql").is_dir() and not (pod.datadir / "mysql" / "user.frm").exists()
    assert not (pod.datadir / ".kubess-initialising").exists()


def test_a_finished_initialisation_is_never_moved_aside(make_pod):
    pod = make_pod("pxc-0", replicas=1)
    started_with(pod.start())
    # The member ran; it restarts with its data.
    (pod.datadir / "grastate.dat").write_text(grastate(UUID, 12, 1))
    result = pod.start()
    args = started_with(result)[0]
    assert asides(pod) == [] and "moved" not in result.stderr
    assert "MySQL init process done" not in result.stdout and "--wsrep_cluster_address=gcomm://" in args


def test_a_data_directory_from_before_the_mark_is_left_alone(make_pod):
    pod = make_pod("pxc-2").with_data(seqno=40)
    pod.galera_up(0)
    started_with(pod.start())
    assert asides(pod) == [] and (pod.datadir / "grastate.dat").exists()


def test_repeated_interrupted_initialisations_stop_before_filling_the_volume(make_pod):
    pod = make_pod("pxc-0")
    for _attempt in range(5):
        result = pod.start(STUB_KILL_DURING_INIT="1")
        assert result.returncode != 0
    assert len(asides(pod)) == 3
    assert "already holds 3 earlier attempts" in result.stderr
    assert (pod.datadir / "mysql").is_dir()  # the fourth attempt's leftovers stay where they are


# --- signals ------------------------------------------------------------------------------------
def waiting(pod: Pod) -> bool:
    phase = pod.run / "phase"
    return phase.exists() and phase.read_text().strip() == "waiting" and any(
        a.startswith("TCP:") for c in pod.calls("socat") for a in c["argv"])


def test_sigterm_as_pid_1_while_waiting_ends_the_member_at_once(make_pod):
    # As a pod's PID 1, bash ignores SIGTERM unless it traps it: deleting a waiting member would take the
    # whole grace period. Here the script is PID 1 of a PID namespace of its own, as in a container.
    pod = make_pod("pxc-1")
    process = pod.popen(["unshare", "--pid", "--fork", "--kill-child", BASH, str(ENTRYPOINT)],
                        KUBESS_POLL_INTERVAL="30", KUBESS_WAIT_TIMEOUT="0")
    try:
        pod.wait_for(lambda: waiting(pod), "the member waiting for its peers")
        pid1 = int(Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()[0])
        sent = time.monotonic()
        os.kill(pid1, signal.SIGTERM)
        process.wait(timeout=10)
        # Without the trap it would never end (PID 1 ignores SIGTERM); with it, at once, not after the 30 s poll.
        assert time.monotonic() - sent < 2
        assert "SIGTERM before the server started: stopping" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sigterm_while_waiting_stops_the_announcer_too(make_pod):
    pod = make_pod("pxc-1")
    process = pod.popen([BASH, str(ENTRYPOINT)], KUBESS_POLL_INTERVAL="30", KUBESS_WAIT_TIMEOUT="0")
    try:
        pod.wait_for(lambda: waiting(pod), "the member waiting for its peers")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 143
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Nothing it started is left: the announcer (a socat stand-in sleeping 300 s) and the sleep end with it.
    pod.wait_for(lambda: not started_by(pod), "the end of what the member started", timeout=5)


def started_by(pod: Pod) -> list[str]:
    """The command lines of the processes running with the pod's PATH."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(pod.bin) in (proc / "environ").read_text(errors="ignore"):
                found.append((proc / "cmdline").read_text().replace("\0", " "))
        except OSError:
            continue
    return found


def test_phase_file_tells_liveness_what_happens(make_pod):
    pod = make_pod("pxc-1")
    pod.start(KUBESS_WAIT_TIMEOUT="1")
    assert (pod.run / "phase").read_text().strip() == "waiting"
    pod.galera_up(0)
    started_with(pod.start())
    assert (pod.run / "phase").read_text().strip() == "server"


def test_hostname_without_ordinal_is_rejected(make_pod):
    pod = make_pod("mysql")
    result = pod.start()
    assert result.returncode == 1
    assert "does not end in -<ordinal>" in result.stderr


def test_announcer_serves_the_state_and_is_stopped_before_the_server(make_pod):
    pod = make_pod("pxc-0")
    started_with(pod.start())
    listen = [c["argv"] for c in pod.calls("socat") if c["argv"][0].startswith("TCP-LISTEN:")]
    assert listen == [["TCP-LISTEN:4569,reuseaddr,fork", "SYSTEM:cat", f"{pod.run}/state"]]
    assert started_by(pod) == []


# --- readiness ----------------------------------------------------------------------------------
def galera(state: str, ready: str) -> dict:
    return {"wsrep_local_state_comment": state, "wsrep_ready": ready, "wsrep_cluster_size": "3"}


@pytest.mark.parametrize("flavor", ["percona", "mariadb"])
@pytest.mark.parametrize(
    ("state", "ready", "rc"),
    [
        ("Synced", "ON", 0),
        ("Donor/Desynced", "ON", 1),
        ("Joining", "OFF", 1),
        ("Joined", "ON", 1),
        ("Initialized", "OFF", 1),
        ("Synced", "OFF", 1),
    ],
)
def test_readiness_means_synced_and_wsrep_ready(make_pod, flavor, state, ready, rc):
    pod = make_pod("pxc-0", flavor=flavor)
    pod.serve(status=galera(state, ready))
    result = pod.run_script(READINESS)
    assert result.returncode == rc, result.stderr
    if rc:
        assert f"wsrep_local_state_comment={state}" in result.stderr


@pytest.mark.parametrize(("running", "users"), [(False, None), (True, {"monitor": "another"})])
def test_readiness_fails_when_the_server_does_not_answer_or_refuses_the_login(make_pod, running, users):
    pod = make_pod("pxc-0")
    pod.serve(running=running, users=users, status=galera("Synced", "ON"))
    result = pod.run_script(READINESS)
    assert result.returncode == 1
    assert "does not answer" in result.stderr


@pytest.mark.parametrize("flavor", ["percona", "mariadb"])
def test_readiness_passes_the_password_in_the_environment_only(make_pod, flavor):
    pod = make_pod("pxc-0", flavor=flavor)
    pod.serve(status=galera("Synced", "ON"))
    assert pod.run_script(READINESS).returncode == 0
    client = {"percona": "mysql", "mariadb": "mariadb"}[flavor]
    (call,) = pod.calls(client)
    assert MONITOR_PASSWORD not in " ".join(call["argv"])
    assert "--user=monitor" in call["argv"]
    assert call["pwd"] == MONITOR_PASSWORD


# --- liveness -----------------------------------------------------------------------------------
@pytest.mark.parametrize("phase", ["deciding", "waiting"])
def test_liveness_passes_while_the_entrypoint_waits(make_pod, phase):
    pod = make_pod("pxc-0")
    pod.serve(running=False)
    (pod.run / "phase").write_text(phase + "\n")
    result = pod.run_script(LIVENESS)
    assert result.returncode == 0
    assert pod.calls("mysqladmin") == []


def test_liveness_passes_during_sst(make_pod):
    pod = make_pod("pxc-0")
    pod.serve(running=False)
    (pod.run / "phase").write_text("server\n")
    (pod.datadir / "sst_in_progress").write_text("")
    assert pod.run_script(LIVENESS).returncode == 0


def test_liveness_passes_while_the_image_initialises_the_data_directory(make_pod):
    """The image's first initialisation (mysql_install_db, a temporary server without networking, the init scripts)
    can take minutes on slow storage; a restart then would only move the unfinished directory aside and begin
    again."""
    pod = make_pod("pxc-0")
    pod.serve(running=False)
    (pod.run / "phase").write_text("server\n")
    (pod.datadir / ".kubess-initialising").write_text("")
    assert pod.run_script(LIVENESS).returncode == 0
    (pod.datadir / ".kubess-initialising").unlink()
    assert pod.run_script(LIVENESS).returncode == 1


@pytest.mark.parametrize("flavor", ["percona", "mariadb"])
@pytest.mark.parametrize(("running", "users", "expected"),
                         [(True, None, 0), (True, {"monitor": "another"}, 0), (False, None, 1)])
def test_liveness_follows_the_admin_ping_once_the_server_runs(make_pod, flavor, running, users, expected):
    pod = make_pod("pxc-0", flavor=flavor)
    pod.serve(running=running, users=users)
    (pod.run / "phase").write_text("server\n")
    result = pod.run_script(LIVENESS)
    assert result.returncode == expected
    (call,) = pod.calls({"percona": "mysqladmin", "mariadb": "mariadb-admin"}[flavor])
    assert "ping" in call["argv"] and MONITOR_PASSWORD not in " ".join(call["argv"])
