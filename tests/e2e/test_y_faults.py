"""Faults on the running stack, in real containers, after the checks of each part: each part recovers by itself,
without losing data."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from conftest import REPO, run_site

from test_etcd import MEMBERS, endpoint
from test_galera import CAUSAL, MEMBERS as GALERA, ensure_table, sql, wsrep_status
from test_wordpress import fetch, service_url

sys.path.insert(0, str(REPO / "molecule" / "shared"))
from audit_writes import writes  # noqa: E402 pylint: disable=wrong-import-position

REPORT = REPO / "playbooks" / "galera_recovery_report.yml"


def test_deleted_etcd_member_rejoins_with_its_data(stack):
    key, value = f"/e2e/fault/{uuid.uuid4().hex}", uuid.uuid4().hex
    stack.etcdctl("etcd-0", "put", key, value, endpoints=[endpoint("etcd-0", stack)])
    before = stack.get("pod", "etcd-1")["metadata"]["uid"]
    stack.kubectl("delete", "pod", "etcd-1", "-n", stack.namespace, "--wait=true")
    stack.wait_for(lambda: stack.get("pod", "etcd-1")["metadata"]["uid"] != before and stack.ready("etcd-1"),
                   what="etcd-1 back and Ready")
    # A serializable read is answered from the member's own data, not through the leader.
    got = stack.etcdctl("etcd-1", "get", key, "--print-value-only", "--consistency=s",
                        endpoints=[endpoint("etcd-1", stack)])
    assert got.stdout.strip() == value
    members = stack.etcdctl("etcd-0", "member", "list", "-w", "json").stdout
    assert all(f'"name":"{m}"' in members.replace(" ", "") for m in MEMBERS)


def test_deleting_a_wordpress_pod_under_requests(stack):
    """Requests go on while one web pod is deleted: the figure of failed requests is reported, and must stay small
    (the Service drops the pod before Apache stops gracefully)."""
    url = service_url(stack)
    victim = sorted(p["metadata"]["name"] for p in stack.pods("app.kubernetes.io/instance=wordpress"))[0]
    results = []
    stop = threading.Event()

    def requests():
        while not stop.is_set():
            status, _page = fetch(f"{url}/wp-login.php", timeout=10)
            results.append(status)

    worker = threading.Thread(target=requests, daemon=True)
    worker.start()
    try:
        stack.wait_for(lambda: len(results) >= 20, timeout=60, what="requests before the deletion")
        stack.kubectl("delete", "pod", victim, "-n", stack.namespace, "--wait=true")
        count = len(results)
        stack.wait_for(lambda: len(results) >= count + 50, timeout=120, what="requests after the deletion")
    finally:
        stop.set()
        worker.join(timeout=15)
    failed = [s for s in results if s != 200]
    print(f"\nWordPress pod {victim} deleted during {len(results)} requests: {len(failed)} failed {sorted(set(failed))}")
    assert len(failed) <= len(results) // 50, f"{len(failed)} of {len(results)} requests failed"
    stack.wait_for(lambda: stack.deployment_settled("wordpress"), what="every web pod Ready again")


def replaced_and_ready(stack, pod: str, before: str) -> bool:
    try:
        return stack.get("pod", pod)["metadata"]["uid"] != before and stack.ready(pod)
    except subprocess.CalledProcessError:  # between the old pod's removal and its replacement
        return False


def synced_cluster_of_three(stack) -> bool:
    for member in GALERA:
        try:
            status = wsrep_status(stack, member)
        except AssertionError:  # the client cannot connect yet
            return False
        if status.get("wsrep_cluster_size") != "3" or status.get("wsrep_local_state_comment") != "Synced":
            return False
    return True


def test_galera_member_deleted_while_rows_are_written_rejoins_with_every_row(stack):
    ensure_table(stack, "under_writes")
    run = uuid.uuid4().hex[:12]
    written, errors = [], []
    stop = threading.Event()

    def writer():
        n = 0
        while not stop.is_set():
            n += 1
            try:
                sql(stack, "pxc-0", f"INSERT INTO kubess_e2e.under_writes (marker) VALUES ('{run}-{n}')")
                written.append(n)
            except Exception as err:  # pylint: disable=broad-exception-caught  # any failure counts, the writer goes on
                errors.append(f"{type(err).__name__}: {err}")

    worker = threading.Thread(target=writer, daemon=True)
    worker.start()
    try:
        stack.wait_for(lambda: len(written) >= 5, timeout=60, what="rows written before the deletion")
        before = stack.get("pod", "pxc-1")["metadata"]["uid"]
        stack.kubectl("delete", "pod", "pxc-1", "-n", stack.namespace, "--wait=true", timeout=300)
        stack.wait_for(lambda: replaced_and_ready(stack, "pxc-1", before), timeout=600, what="pxc-1 back and Ready")
        count = len(written)
        stack.wait_for(lambda: len(written) >= count + 5, timeout=60, what="rows written after the rejoin")
    finally:
        stop.set()
        worker.join(timeout=60)
    print(f"\npxc-1 deleted during {len(written)} writes on pxc-0: {len(errors)} failed")
    assert not errors, errors[:3]
    stack.wait_for(lambda: synced_cluster_of_three(stack), timeout=300, what="three Synced members")
    rows = sql(stack, "pxc-1", f"{CAUSAL}SELECT COUNT(*) FROM kubess_e2e.under_writes WHERE marker LIKE '{run}-%'")
    assert rows == [[str(len(written))]]


def stopped(stack, member: str, uid: str) -> bool:
    """The member's pod was deleted, and its replacement waits Pending (the node is cordoned)."""
    try:
        pod = stack.get("pod", member)
    except subprocess.CalledProcessError:
        return False
    return pod["metadata"]["uid"] != uid and pod["status"].get("phase") == "Pending"


def datadir(stack, member: str) -> Path:
    """The member's data directory on the NFS server (this machine)."""
    claim = stack.get("pvc", f"datadir-{member}")
    return Path(stack.node.cluster.get_json("pv", claim["spec"]["volumeName"])["spec"]["nfs"]["path"])


def grastate(path: Path) -> dict[str, str]:
    return dict(line.split(":", 1) for line in path.read_text().splitlines() if ":" in line and not line.startswith("#"))


def test_galera_full_outage_bootstraps_from_the_last_member_stopped_though_another_claims_it_too(stack):
    """Members stop one by one, 0, then 2, then 1, each after rows written on the ones still running: ordinal 1,
    the last to stop, alone holds every row, and Galera marks it safe to bootstrap. pxc-2's grastate.dat is then made
    to claim safe_to_bootstrap too (as data directories restored from different times can): started together, the
    cluster must bootstrap from ordinal 1, the more advanced claimant, and pxc-2 must not start a second cluster."""
    ensure_table(stack, "outage")
    run = uuid.uuid4().hex[:12]
    uids = {member: stack.get("pod", member)["metadata"]["uid"] for member in GALERA}

    # Cordoned, the node takes no new pod: a deleted member stays down (its replacement Pending).
    stack.kubectl("cordon", stack.node.name)
    try:
        for step, (member, writer) in enumerate([("pxc-0", "pxc-1"), ("pxc-2", "pxc-1"), ("pxc-1", None)]):
            sql(stack, "pxc-1", f"INSERT INTO kubess_e2e.outage (marker) VALUES ('{run}-{step}')")
            stack.kubectl("delete", "pod", member, "-n", stack.namespace, "--wait=true", timeout=300)
            stack.wait_for(lambda m=member: stopped(stack, m, uids[m]), timeout=120, what=f"{member} stopped")
            if writer:
                size = wsrep_status(stack, writer)["wsrep_cluster_size"]
                assert size == str(2 - step), f"{writer} sees a cluster of {size} after {member} stopped"
        last, other = grastate(datadir(stack, "pxc-1") / "grastate.dat"), datadir(stack, "pxc-2") / "grastate.dat"
        claimed = grastate(other)
        assert last["safe_to_bootstrap"].strip() == "1" and claimed["safe_to_bootstrap"].strip() == "0"
        assert int(last["seqno"]) > int(claimed["seqno"]) >= 0, (last, claimed)
        other.write_text(other.read_text().replace("safe_to_bootstrap: 0", "safe_to_bootstrap: 1"))
    finally:
        stack.kubectl("uncordon", stack.node.name)
    stack.wait_for(lambda: all(stack.ready(member) for member in GALERA), timeout=900, what="every member Ready")
    stack.wait_for(lambda: synced_cluster_of_three(stack), timeout=300, what="three Synced members")
    log = stack.kubectl("logs", "-n", stack.namespace, "pxc-1", "-c", "pxc").stdout
    assert "this member bootstraps" in log, log[-3000:]
    # pxc-2 read its claim (its position line says so), and gave way to pxc-1.
    claimant = member_log(stack, "pxc-2", "--previous") + member_log(stack, "pxc-2")
    assert f"seqno={int(claimed['seqno'])} safe_to_bootstrap=1" in claimant, claimant[-3000:]
    for member in ("pxc-0", "pxc-2"):
        other = stack.kubectl("logs", "-n", stack.namespace, member, "-c", "pxc").stdout
        assert "this member bootstraps" not in other, f"{member} bootstrapped too"
    for member in GALERA:
        rows = sql(stack, member, f"{CAUSAL}SELECT marker FROM kubess_e2e.outage WHERE marker LIKE '{run}-%' ORDER BY id")
        assert rows == [[f"{run}-{step}"] for step in range(3)], (member, rows)
    # The web pods, whose database went away, serve again.
    stack.wait_for(lambda: stack.deployment_settled("wordpress"), timeout=300, what="every web pod Ready again")


def member_log(stack, member: str, *extra: str) -> str:
    return stack.kubectl("logs", "-n", stack.namespace, member, "-c", "pxc", *extra, check=False).stdout


def test_galera_members_wait_for_one_that_cannot_read_its_volume_and_the_report_says_so(stack):
    """pxc-2 stops last (it alone holds the last row, and safe_to_bootstrap: 1); then its directory on the NFS server
    is made unreadable to the image's user. Started together, pxc-0 and pxc-1 must not elect without it (pxc-2 must
    not count as an empty member); the recovery report, in check mode and writing nothing, names pxc-2, why its
    position is unknown, and the way out. Once the directory is readable again pxc-2 bootstraps, and every row is
    there."""
    ensure_table(stack, "unreadable")
    run = uuid.uuid4().hex[:12]
    uids = {member: stack.get("pod", member)["metadata"]["uid"] for member in GALERA}
    claim = stack.get("pvc", "datadir-pxc-2")
    volume = stack.node.cluster.get_json("pv", claim["spec"]["volumeName"])
    datadir = Path(volume["spec"]["nfs"]["path"])
    assert (datadir / "grastate.dat").exists(), datadir

    mode = datadir.stat().st_mode & 0o7777
    stack.kubectl("cordon", stack.node.name)
    try:
        for step, member in enumerate(GALERA):
            sql(stack, "pxc-2", f"INSERT INTO kubess_e2e.unreadable (marker) VALUES ('{run}-{step}')")
            stack.kubectl("delete", "pod", member, "-n", stack.namespace, "--wait=true", timeout=300)
            stack.wait_for(lambda m=member: stopped(stack, m, uids[m]), timeout=120, what=f"{member} stopped")
        assert "safe_to_bootstrap: 1" in (datadir / "grastate.dat").read_text()
        datadir.chmod(0)
    finally:
        stack.kubectl("uncordon", stack.node.name)
    try:
        # Each of the others has every position but pxc-2's.
        only_pxc_2 = f"waiting for the state of: pxc-2.pxc.{stack.namespace}.svc.cluster.local (set"
        for member in ("pxc-0", "pxc-1"):
            stack.wait_for(lambda m=member: only_pxc_2 in member_log(stack, m), timeout=300,
                           what=f"{member} waiting for the position of pxc-2 alone")
        stack.wait_for(lambda: "cannot read /var/lib/mysql as uid 999: this member's position is unknown"
                       in member_log(stack, "pxc-2") + member_log(stack, "pxc-2", "--previous"),
                       timeout=300, what="pxc-2 saying it cannot read its volume")
        assert not any(stack.ready(member) for member in GALERA)

        since = time.time()
        env = dict(stack.node.cluster.env, ANSIBLE_CALLBACK_RESULT_FORMAT="json")
        report = run_site(env, "recovery-report", "--check", playbook=REPORT)
        assert report.returncode == 0, report.tail()
        with open(stack.node.cluster.audit_log, encoding="utf-8") as log:
            assert writes(log, since) == [], "the report wrote to the cluster"
        text = report.log.read_text(errors="replace")
        assert "pxc-2" in text and "position unknown" in text, report.tail()
        for member in ("pxc-0", "pxc-1"):
            assert f"{member} on {stack.node.name}: waiting; uuid " in text, report.tail()
        assert "decision: no member runs; waiting for the position of every member, missing: pxc-2" in text, \
            report.tail()
        assert "pxc-1 is the most advanced" in text and "-e pxc_force_bootstrap_ordinal=1" in text, report.tail()
    finally:
        datadir.chmod(mode)
    stack.wait_for(lambda: all(stack.ready(member) for member in GALERA), timeout=900, what="every member Ready")
    stack.wait_for(lambda: synced_cluster_of_three(stack), timeout=300, what="three Synced members")
    assert "this member bootstraps" in member_log(stack, "pxc-2")
    for member in GALERA:
        rows = sql(stack, member,
                   f"{CAUSAL}SELECT marker FROM kubess_e2e.unreadable WHERE marker LIKE '{run}-%' ORDER BY id")
        assert rows == [[f"{run}-{step}"] for step in range(3)], (member, rows)
    stack.wait_for(lambda: stack.deployment_settled("wordpress"), timeout=300, what="every web pod Ready again")
