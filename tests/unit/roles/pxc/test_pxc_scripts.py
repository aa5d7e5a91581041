"""Tests of the scripts that run inside the Percona XtraDB Cluster pods (roles/pxc/files/).

Each script runs here with what a pod would see: its hostname, its data directory (empty, or holding
a grastate.dat), the bootstrap ConfigMap's files, and the network as seen through ``socat`` (a stand-in
on the PATH answers from a directory of "open ports": ``<host>:<port>`` files, whose content is what
the port sends). ``mysqld --wsrep-recover``, ``mysql``, ``mysqladmin`` and the image's entrypoint are
stand-ins too, recording how they were called.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FILES = HERE.parents[3] / "roles" / "pxc" / "files"
ENTRYPOINT = FILES / "pxc-entrypoint.sh"
READINESS = FILES / "pxc-readiness.sh"
LIVENESS = FILES / "pxc-liveness.sh"
BASH = shutil.which("bash") or "/bin/bash"

NS = "shop"
ROOT_PASSWORD = "R00t-secret-value-xyz"
MONITOR_PASSWORD = "M0nitor-secret-value-abc"


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


UUID = "7e3c5c4a-1b2d-11ef-9a6e-0242ac120002"

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

MYSQLD_STUB = r"""#!/bin/bash
printf '%s\n' "$*" >>"$STUB_LOG_DIR/mysqld.calls"
for a in "$@"; do
  case $a in --log_error=*) log=${a#--log_error=} ;; esac
done
if [ -n "${STUB_RECOVERED:-}" ] && [ -n "${log:-}" ]; then
  printf '2024-01-01T00:00:00Z 0 [Note] [MY-000000] [WSREP] Recovered position: %s\n' "$STUB_RECOVERED" >"$log"
fi
"""

# Like the image's entrypoint: it traces every command, which would print the password.
IMAGE_ENTRYPOINT_STUB = r"""#!/bin/bash
set -eo pipefail
set -o xtrace
mysql=( mysql -uroot )
mysql+=( -p"${MYSQL_ROOT_PASSWORD}" )
: "${mysql[@]}"
echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '${MYSQL_ROOT_PASSWORD}' ;" >/dev/null
printf 'ARGS %s\n' "$*"
printf 'CLUSTER_JOIN %s\n' "${CLUSTER_JOIN-<unset>}"
"""

MYSQL_STUB = r"""#!/bin/bash
printf '%s\n' "$*" >>"$STUB_LOG_DIR/mysql.calls"
printf '%s\n' "${MYSQL_PWD-<unset>}" >>"$STUB_LOG_DIR/mysql.pwd"
[ "${STUB_MYSQL_RC:-0}" = 0 ] || exit "$STUB_MYSQL_RC"
printf '%b' "${STUB_MYSQL_OUTPUT:-}"
"""

MYSQLADMIN_STUB = r"""#!/bin/bash
printf '%s\n' "$*" >>"$STUB_LOG_DIR/mysqladmin.calls"
exit "${STUB_MYSQLADMIN_RC:-0}"
"""


class Pod:
    """A pod's view of the world, built in a temporary directory."""

    def __init__(self, tmp: Path, hostname: str, replicas: int = 3):
        self.tmp = tmp
        self.bin = tmp / "bin"
        self.net = tmp / "net"
        self.logs = tmp / "logs"
        self.datadir = tmp / "datadir"
        self.state = tmp / "state"
        self.run = tmp / "run"
        for d in (self.bin, self.net, self.logs, self.datadir, self.state, self.run):
            d.mkdir(parents=True)
        for name, text in (
            ("socat", SOCAT_STUB),
            ("mysqld", MYSQLD_STUB),
            ("mysql", MYSQL_STUB),
            ("mysqladmin", MYSQLADMIN_STUB),
        ):
            path = self.bin / name
            path.write_text(text, encoding="utf-8")
            path.chmod(0o755)
        self.image_entrypoint = tmp / "image-entrypoint.sh"
        self.image_entrypoint.write_text(IMAGE_ENTRYPOINT_STUB, encoding="utf-8")
        self.image_entrypoint.chmod(0o755)
        (self.state / "replicas").write_text(f"{replicas}\n", encoding="utf-8")
        self.env = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "HOSTNAME": hostname,
            "PXC_SET_NAME": "pxc",
            "PXC_SERVICE": "pxc",
            "POD_NAMESPACE": NS,
            "PXC_CLUSTER_DOMAIN": "cluster.local",
            "PXC_DATADIR": str(self.datadir),
            "PXC_STATE_DIR": str(self.state),
            "PXC_RUN_DIR": str(self.run),
            "PXC_POLL_INTERVAL": "0.05",
            "PXC_WAIT_TIMEOUT": "2",
            "PXC_IMAGE_ENTRYPOINT": str(self.image_entrypoint),
            "MYSQL_ROOT_PASSWORD": ROOT_PASSWORD,
            "MONITOR_PASSWORD": MONITOR_PASSWORD,
            "STUB_NET_DIR": str(self.net),
            "STUB_LOG_DIR": str(self.logs),
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

    # --- running ---------------------------------------------------------------------------------
    def run_script(self, script: Path, timeout: float = 20, **extra: str) -> subprocess.CompletedProcess:
        env = dict(self.env, **extra)
        return subprocess.run([BASH, str(script)], env=env, capture_output=True, text=True, timeout=timeout, check=False)

    def start(self, **extra: str) -> subprocess.CompletedProcess:
        return self.run_script(ENTRYPOINT, **extra)

    def calls(self, prog: str) -> list[str]:
        path = self.logs / f"{prog}.calls"
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


@pytest.fixture
def make_pod(tmp_path):
    def _make(hostname: str, replicas: int = 3) -> Pod:
        return Pod(tmp_path / hostname, hostname, replicas)

    return _make


def started_with(result: subprocess.CompletedProcess) -> tuple[list[str], str]:
    """The arguments and CLUSTER_JOIN the image's entrypoint was started with."""
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    return lines["ARGS"].split(" "), lines["CLUSTER_JOIN"]


def safe_flag(pod: Pod) -> str:
    for line in (pod.datadir / "grastate.dat").read_text(encoding="utf-8").splitlines():
        if line.startswith("safe_to_bootstrap:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("no safe_to_bootstrap line")


# --- first install ------------------------------------------------------------------------------
def test_ordinal_0_with_empty_datadir_and_no_peer_starts_a_new_cluster(make_pod):
    pod = make_pod("pxc-0")
    args, join = started_with(pod.start())
    assert args == ["mysqld", "--wsrep_node_name=pxc-0", "--wsrep_cluster_address=gcomm://"]
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
    assert args == ["mysqld", "--wsrep_node_name=pxc-1", f"--wsrep_cluster_address=gcomm://{host(0)}"]
    assert join == host(0)


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
    result = pod.start(PXC_WAIT_TIMEOUT="10")
    opener.join()
    join = started_with(result)[1]
    assert join == host(0)
    assert time.monotonic() - t0 >= 0.5
    assert f"waiting for {host(0)} to start a new cluster" in result.stderr


def test_ordinal_1_never_bootstraps_on_its_own(make_pod):
    pod = make_pod("pxc-1")
    result = pod.start(PXC_WAIT_TIMEOUT="1")
    assert result.returncode == 1
    assert "ARGS" not in result.stdout
    assert "no bootstrap decision after 1s" in result.stderr
    assert f"waiting for the state of: {host(0)}, {host(2)}" in result.stderr


def test_single_member_cluster_bootstraps_without_peers(make_pod):
    pod = make_pod("pxc-0", replicas=1)
    args = started_with(pod.start())[0]
    assert "--wsrep_cluster_address=gcomm://" in args
    assert pod.calls("socat")[-1].startswith("TCP-LISTEN:4569")  # only the announcer, no peer probed


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
    args, join = started_with(pod.start())
    assert args == ["mysqld", "--wsrep_node_name=pxc-2", "--wsrep_cluster_address=gcomm://"]
    assert join == "<unset>"
    assert "safe_to_bootstrap: 1: this member bootstraps" in pod.start().stderr


def test_others_wait_for_the_member_marked_safe_to_bootstrap(make_pod):
    pod = make_pod("pxc-0").with_data(seqno=100)
    pod.set_state("cluster-initialized", "true")
    pod.peer_state(1, seqno=90)
    pod.peer_state(2, seqno=100, safe=1)
    result = pod.start(PXC_WAIT_TIMEOUT="1")
    assert result.returncode == 1
    assert f"waiting for the most advanced member {host(2)} (seqno 100)" in result.stderr


def test_crash_most_advanced_member_by_wsrep_recover_bootstraps(make_pod):
    # Crash: every grastate.dat says seqno -1, safe_to_bootstrap 0; wsrep-recover gives 120 here.
    pod = make_pod("pxc-1").with_data(seqno=-1, safe=0)
    pod.set_state("cluster-initialized", "true")
    pod.peer_state(0, seqno=100)
    pod.peer_state(2, seqno=90)
    result = pod.start(STUB_RECOVERED=f"{UUID}:120")
    args = started_with(result)[0]
    assert "--wsrep_cluster_address=gcomm://" in args
    assert any("--wsrep-recover" in c for c in pod.calls("mysqld"))
    assert safe_flag(pod) == "1"  # mysqld refuses to bootstrap without it
    assert "recovered position" in result.stderr
    # It published what it found, for its peers to compare.
    assert (pod.run / "state").read_text().split() == [
        "ordinal=1", "empty=0", f"uuid={UUID}", "seqno=120", "safe_to_bootstrap=0"
    ]


def test_crash_less_advanced_member_waits_and_keeps_its_flag(make_pod):
    pod = make_pod("pxc-0").with_data(seqno=-1, safe=0)
    pod.set_state("cluster-initialized", "true")
    pod.peer_state(1, seqno=120)
    pod.peer_state(2, seqno=90)
    result = pod.start(STUB_RECOVERED=f"{UUID}:100", PXC_WAIT_TIMEOUT="1")
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
    result = pod.start(PXC_WAIT_TIMEOUT="10")
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
    result = other.start(PXC_WAIT_TIMEOUT="1")
    assert result.returncode == 1
    assert f"most advanced member {host(1)}" in result.stderr


def test_outage_waits_for_every_member_before_electing(make_pod):
    pod = make_pod("pxc-2").with_data(seqno=500)
    pod.set_state("cluster-initialized", "true")
    pod.peer_state(0, seqno=10)
    result = pod.start(PXC_WAIT_TIMEOUT="1")
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
    result = pod.start(PXC_WAIT_TIMEOUT="1")
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
    result = pod.start(PXC_WAIT_TIMEOUT="10")
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
    result = pod.start(PXC_WAIT_TIMEOUT="1")
    assert result.returncode == 1
    assert f"{host(1)} hold data" in result.stderr
    assert f"most advanced member {host(1)} (seqno 300)" in result.stderr


def test_empty_ordinal_0_of_an_initialized_cluster_never_starts_a_new_one(make_pod):
    pod = make_pod("pxc-0")
    pod.set_state("cluster-initialized", "true")
    result = pod.start(PXC_WAIT_TIMEOUT="1")
    assert result.returncode == 1
    assert "ARGS" not in result.stdout


def test_initialized_cluster_with_every_volume_empty_needs_the_operator(make_pod):
    pod = make_pod("pxc-0")
    pod.set_state("cluster-initialized", "true")
    pod.peer_empty(1)
    pod.peer_empty(2)
    result = pod.start(PXC_WAIT_TIMEOUT="1")
    assert result.returncode == 1
    assert "refusing to start an empty cluster over lost volumes" in result.stderr


# --- plumbing -----------------------------------------------------------------------------------
def test_hostname_without_ordinal_is_rejected(make_pod):
    pod = make_pod("mysql")
    result = pod.start()
    assert result.returncode == 1
    assert "does not end in -<ordinal>" in result.stderr


def test_announcer_serves_the_state_and_is_stopped_before_mysqld(make_pod):
    pod = make_pod("pxc-0")
    started_with(pod.start())
    listen = [c for c in pod.calls("socat") if c.startswith("TCP-LISTEN:")]
    assert listen == [f"TCP-LISTEN:4569,reuseaddr,fork SYSTEM:cat {pod.run}/state"]
    leftover = subprocess.run(["pgrep", "-f", "sleep 300"], capture_output=True, text=True, check=False)
    mine = [p for p in leftover.stdout.split() if str(pod.bin) in Path(f"/proc/{p}/environ").read_text(errors="ignore")]
    assert mine == []


def test_phase_file_tells_liveness_what_happens(make_pod):
    pod = make_pod("pxc-1")
    pod.start(PXC_WAIT_TIMEOUT="1")
    assert (pod.run / "phase").read_text().strip() == "waiting"
    pod.galera_up(0)
    started_with(pod.start())
    assert (pod.run / "phase").read_text().strip() == "mysqld"


def test_image_entrypoint_runs_without_tracing_the_password(make_pod):
    pod = make_pod("pxc-0")
    result = pod.start()
    started_with(result)
    assert ROOT_PASSWORD not in result.stderr + result.stdout
    # The original, run directly, would have printed it: the test would catch a regression.
    direct = subprocess.run([BASH, str(pod.image_entrypoint)], env=pod.env, capture_output=True, text=True, check=False)
    assert ROOT_PASSWORD in direct.stderr


def test_decide_only_prints_the_decision(make_pod):
    pod = make_pod("pxc-2")
    pod.galera_up(0)
    result = pod.start(PXC_DECIDE_ONLY="1")
    assert result.returncode == 0
    assert result.stdout.strip() == f"join {host(0)}"


# --- readiness ----------------------------------------------------------------------------------
def status(state: str, ready: str) -> str:
    return f"wsrep_local_state_comment\\t{state}\\nwsrep_ready\\t{ready}\\n"


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
def test_readiness_means_synced_and_wsrep_ready(make_pod, state, ready, rc):
    pod = make_pod("pxc-0")
    result = pod.run_script(READINESS, STUB_MYSQL_OUTPUT=status(state, ready))
    assert result.returncode == rc, result.stderr
    if rc:
        assert f"wsrep_local_state_comment={state}" in result.stderr


def test_readiness_fails_when_the_server_does_not_answer(make_pod):
    pod = make_pod("pxc-0")
    result = pod.run_script(READINESS, STUB_MYSQL_RC="1", STUB_MYSQL_OUTPUT=status("Synced", "ON"))
    assert result.returncode == 1
    assert "does not answer" in result.stderr


def test_readiness_passes_the_password_in_the_environment_only(make_pod):
    pod = make_pod("pxc-0")
    pod.run_script(READINESS, STUB_MYSQL_OUTPUT=status("Synced", "ON"))
    (call,) = pod.calls("mysql")
    assert MONITOR_PASSWORD not in call
    assert "--user=monitor" in call
    assert "wsrep_local_state_comment" in call and "wsrep_ready" in call
    assert (pod.logs / "mysql.pwd").read_text().strip() == MONITOR_PASSWORD


# --- liveness -----------------------------------------------------------------------------------
@pytest.mark.parametrize("phase", ["deciding", "waiting"])
def test_liveness_passes_while_the_entrypoint_waits(make_pod, phase):
    pod = make_pod("pxc-0")
    (pod.run / "phase").write_text(phase + "\n")
    result = pod.run_script(LIVENESS, STUB_MYSQLADMIN_RC="1")
    assert result.returncode == 0
    assert pod.calls("mysqladmin") == []


def test_liveness_passes_during_sst(make_pod):
    pod = make_pod("pxc-0")
    (pod.run / "phase").write_text("mysqld\n")
    (pod.datadir / "sst_in_progress").write_text("")
    assert pod.run_script(LIVENESS, STUB_MYSQLADMIN_RC="1").returncode == 0


@pytest.mark.parametrize(("rc", "expected"), [("0", 0), ("1", 1)])
def test_liveness_follows_mysqladmin_ping_once_mysqld_runs(make_pod, rc, expected):
    pod = make_pod("pxc-0")
    (pod.run / "phase").write_text("mysqld\n")
    result = pod.run_script(LIVENESS, STUB_MYSQLADMIN_RC=rc)
    assert result.returncode == expected
    (call,) = pod.calls("mysqladmin")
    assert "ping" in call and MONITOR_PASSWORD not in call
