"""Galera backups in real containers (the MariaDB flavour): the site's CronJob and backup volume; a backup taken on
demand by the Job on pxc-2's node, from its data volume (mariadb-backup streamed and gzipped onto the NFS export,
this cluster's oldest pruned); that backup, unpacked, prepared and started by a server of its own in another pod,
holds the row written before it and not the one written after, with the cluster's Galera position; refused while a
member is frozen (2 of the 3 members in the Primary component), taken when forced."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
import uuid

from conftest import NFS_ROOT, OUTPUT, REPO, run_site
from test_galera import CAUSAL, MEMBERS, ensure_table, sql, wsrep_status

BACKUPS = NFS_ROOT.parent / "backups" / "galera"
PLAYBOOK = REPO / "playbooks" / "pxc_backup.yml"
IMAGE = "kubess.local/mariadb-galera:10.11.19"
MYSQL_UID = 999
# Unpacks, prepares and starts the backup named $F with a server of its own (no network, no Galera, no grants), then
# prints the Galera position the backup recorded and the markers of kubess_e2e.rows.
CHECK = """set -euo pipefail
mkdir -p /scratch/data
gzip -dc "/backup/$F" | mbstream -x -C /scratch/data
mariadb-backup --prepare --target-dir=/scratch/data >/scratch/prepare.log 2>&1 || { tail -n 20 /scratch/prepare.log; exit 1; }
echo "galera-info $(cat /scratch/data/xtrabackup_galera_info)"
mariadbd --no-defaults --datadir=/scratch/data --socket=/scratch/server.sock --skip-networking --skip-grant-tables \
  --pid-file=/scratch/server.pid --tmpdir=/scratch --log-error=/scratch/server.log &
mariadb-admin --no-defaults --socket=/scratch/server.sock --wait=120 --connect-timeout=2 ping >/dev/null
mariadb --no-defaults --socket=/scratch/server.sock --batch --skip-column-names \
  -e 'SELECT marker FROM kubess_e2e.rows' | sed 's/^/row /'
mariadb-admin --no-defaults --socket=/scratch/server.sock shutdown
"""


def galera_jobs(stack) -> list[dict]:
    jobs = stack.get("jobs", "-l", "app.kubernetes.io/name=galera-backup,app.kubernetes.io/component=backup")["items"]
    return sorted(jobs, key=lambda j: j["metadata"]["creationTimestamp"])


def ours() -> list[str]:
    return sorted(p.name for p in BACKUPS.iterdir() if p.name.startswith("kubess_pxc-"))


def test_the_site_keeps_a_galera_backup_cronjob_and_volume(stack):
    cron = stack.get("cronjob", "pxc-backup")
    assert cron["spec"]["schedule"] == "30 2 * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    claim = stack.get("pvc", "pxc-backup")
    assert claim["status"]["phase"] == "Bound"
    volume = stack.node.cluster.get_json("pv", claim["spec"]["volumeName"])
    assert volume["spec"]["nfs"]["path"] == str(BACKUPS)
    assert (BACKUPS.stat().st_uid, BACKUPS.stat().st_gid) == (MYSQL_UID, MYSQL_UID)


def archived(stack, member: str) -> str:
    """The events of every binary log file archived for ``member``, decoded by the image's mariadb-binlog in the
    member's own binlog-archive container (which has the backup volume mounted)."""
    archive = f"/backup/binlogs/{stack.namespace}_pxc/{member}"
    done = stack.exec(member, "bash", "-c", f"mariadb-binlog --verbose --base64-output=decode-rows {archive}/*/binlog.[0-9]*",
                      container="binlog-archive", check=False)
    return done.stdout if done.returncode == 0 else ""


def test_every_member_archives_the_clusters_transactions_to_the_backup_volume(stack):
    """pxc_backup_binlogs: each member's binlog-archive container runs beside the member, and a row written on one
    member reaches every member's archive on the NFS export, with the same GTID, in files the image's uid owns."""
    for member in MEMBERS:
        (archive,) = [c for c in stack.get("pod", member)["status"]["containerStatuses"] if c["name"] == "binlog-archive"]
        assert archive["ready"] and "running" in archive["state"], archive
    ensure_table(stack, "rows")
    marker = uuid.uuid4().hex
    sql(stack, "pxc-1", f"INSERT INTO kubess_e2e.rows (marker) VALUES ('{marker}')")
    gtids = {}
    for member in MEMBERS:
        text = stack.wait_for(lambda m=member: marker in archived(stack, m) and archived(stack, m), timeout=120,
                              what=f"the row in {member}'s archive")
        # The GTID of the event group that holds the row: the last GTID line before the marker.
        gtids[member] = re.findall(r"\bGTID (\d+-\d+-\d+)\b", text[:text.index(marker)])[-1]
    assert len(set(gtids.values())) == 1 and next(iter(gtids.values())).startswith("1-1-"), gtids
    files = [p for p in (BACKUPS / "binlogs" / f"{stack.namespace}_pxc").glob("pxc-*/*/binlog.*") if p.is_file()]
    assert {p.parts[-3] for p in files} == set(MEMBERS)
    assert all((p.stat().st_uid, p.stat().st_gid) == (MYSQL_UID, MYSQL_UID) for p in files)


def check_backup(stack, name: str) -> list[str]:
    """The lines the check pod printed for the backup ``name`` (it runs the cluster's image on the backup volume)."""
    pod = f"galera-backup-check-{uuid.uuid4().hex[:8]}"
    manifest = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod, "namespace": stack.namespace, "labels": {"app.kubernetes.io/name": "e2e-check"}},
        "spec": {
            "restartPolicy": "Never", "enableServiceLinks": False,
            "nodeSelector": {"kubernetes.io/hostname": "kubess-real-1"},
            "tolerations": [{"key": "kubess.io/real-node", "operator": "Exists", "effect": "NoSchedule"}],
            "securityContext": {"runAsNonRoot": True, "runAsUser": MYSQL_UID, "runAsGroup": MYSQL_UID,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "check", "image": IMAGE, "imagePullPolicy": "Never", "command": ["bash", "-c", CHECK],
                "env": [{"name": "F", "value": name}],
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "backup", "mountPath": "/backup", "readOnly": True},
                                 {"name": "scratch", "mountPath": "/scratch"}]}],
            "volumes": [{"name": "backup", "persistentVolumeClaim": {"claimName": "pxc-backup", "readOnly": True}},
                        {"name": "scratch", "emptyDir": {}}]}}
    stack.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    try:
        stack.wait_for(lambda: stack.get("pod", pod)["status"].get("phase") in ("Succeeded", "Failed"),
                       timeout=600, what=f"{pod} ended")
        phase = stack.get("pod", pod)["status"]["phase"]
        log = stack.kubectl("logs", "-n", stack.namespace, pod).stdout
        assert phase == "Succeeded", log
        return log.splitlines()
    finally:
        stack.kubectl("delete", "-n", stack.namespace, "pod", pod, "--wait=false", check=False)


def test_a_backup_holds_the_rows_written_before_it_and_not_after(stack):
    env = dict(stack.node.cluster.env, ANSIBLE_FORCE_COLOR="0")
    ensure_table(stack, "rows")
    before, after = uuid.uuid4().hex, uuid.uuid4().hex
    sql(stack, "pxc-0", f"INSERT INTO kubess_e2e.rows (marker) VALUES ('{before}')")
    # Written on ordinal 0, applied on ordinal 2 (the member backed up) before the backup starts.
    assert sql(stack, "pxc-2", f"{CAUSAL}SELECT marker FROM kubess_e2e.rows WHERE marker = '{before}'") == [[before]]
    # Older backups of this cluster, and one of another cluster: the new one keeps this cluster's newest two
    # (pxc_backup_keep=2) and leaves the other's alone.
    BACKUPS.mkdir(parents=True, exist_ok=True)
    for name in ("kubess_pxc-20200101T000000Z.mbstream.gz", "kubess_pxc-20200102T000000Z.mbstream.gz",
                 "other-pxc-20200101T000000Z.mbstream.gz"):
        (BACKUPS / name).write_bytes(b"an older backup\n")
        os.chown(BACKUPS / name, MYSQL_UID, MYSQL_UID)
    # In the binary log archive: a file of an older generation of pxc-0, last written before the oldest backup kept
    # (20200102T000000Z), which goes with its directory, and another cluster's, which stays. Written through the NFS
    # server (from pxc-0's binlog-archive container, as 999), whose cache would not see files made behind it.
    archive = BACKUPS / "binlogs" / f"{stack.namespace}_pxc"
    live = sorted(p for p in archive.glob("pxc-*/*/binlog.*") if p.is_file())
    planted = [f"/backup/binlogs/{stack.namespace}_pxc/pxc-0/20191231T000000Z/binlog.000001",
               "/backup/binlogs/other-pxc/pxc-0/20191231T000000Z/binlog.000001"]
    stack.exec("pxc-0", "bash", "-c", 'for f; do mkdir -p "${f%/*}" && echo events >"$f" && touch -d @1577750400 "$f"; done',
               "plant", *planted, container="binlog-archive")  # 2019-12-31 00:00 UTC
    assert (BACKUPS / "binlogs" / "other-pxc" / "pxc-0" / "20191231T000000Z" / "binlog.000001").is_file()

    taken = run_site(env, "galera-backup", "-e", "pxc_backup_keep=2", playbook=PLAYBOOK)
    assert taken.returncode == 0, taken.tail()
    job = galera_jobs(stack)[-1]
    name = job["metadata"]["annotations"]["kubess.io/backup-file"]
    assert f"Galera backup {name} on the claim pxc-backup" in taken.log.read_text(errors="replace")
    assert job["status"].get("succeeded") == 1
    sql(stack, "pxc-0", f"INSERT INTO kubess_e2e.rows (marker) VALUES ('{after}')")
    # Taken on pxc-2's node, from pxc-2 (its log says which member, Synced, in a Primary component of 3).
    (pod,) = stack.get("pods", "-l", f"job-name={job['metadata']['name']}")["items"]
    log = stack.kubectl("logs", "-n", stack.namespace, pod["metadata"]["name"]).stdout
    assert "pxc-2.pxc.kubess.svc.cluster.local: Synced, Primary component of 3 (the cluster has 3)" in log, log
    assert f"stored {name}" in log.splitlines(), log
    stored = BACKUPS / name
    assert stored.is_file() and stored.stat().st_uid == MYSQL_UID and stored.stat().st_size > 100_000
    names = ours()
    assert len(names) == 2 and names[-1] == name, names
    assert (BACKUPS / "other-pxc-20200101T000000Z.mbstream.gz").exists()
    assert not (archive / "pxc-0" / "20191231T000000Z").exists()
    assert (BACKUPS / "binlogs" / "other-pxc" / "pxc-0" / "20191231T000000Z" / "binlog.000001").is_file()
    assert live and all(p.is_file() for p in live)
    assert "pruned binlogs/kubess_pxc/pxc-0/20191231T000000Z/binlog.000001" in log, log

    lines = check_backup(stack, name)
    rows = {line.split(" ", 1)[1] for line in lines if line.startswith("row ")}
    assert before in rows and after not in rows, lines
    (position,) = [line.split(" ", 1)[1] for line in lines if line.startswith("galera-info ")]
    assert position.split(":")[0] == wsrep_status(stack, "pxc-0")["wsrep_cluster_state_uuid"], position

    # kubess.stateful.stack_info names it as the set's last backup.
    report_file = OUTPUT / "stack-info-galera-backup.json"
    info = run_site(env, "stack-info-galera-backup", "-e", json.dumps({"kubess_stack_info_file": str(report_file)}),
                    playbook=REPO / "playbooks" / "stack_info.yml")
    assert info.returncode == 0, info.tail()
    pxc = next(s for s in json.loads(report_file.read_text())["statefulsets"] if s["name"] == "pxc")
    assert pxc["backup"]["cronjob"] == "pxc-backup" and pxc["backup"]["last_succeeded"]["file"] == name, pxc["backup"]
    # And what each member's binlog-archive container copies, from its log.
    archives = {a["pod"]: a for a in pxc["binlog_archive"]}
    assert sorted(archives) == MEMBERS, archives
    for member, archive in archives.items():
        assert archive["ready"] and re.fullmatch(r"binlog\.\d{6}", archive["file"] or ""), archive
        assert re.fullmatch(rf"/backup/binlogs/{stack.namespace}_pxc/{member}/\d{{8}}T\d{{6}}Z", archive["directory"]), archive


def server_pid(stack, pod: str) -> int:
    """The host PID of the database container's first process in ``pod`` (its server once started)."""
    ids = stack.node.crictl("ps", "-q", "--name", "^pxc$", "--label", f"io.kubernetes.pod.name={pod}",
                            "--label", f"io.kubernetes.pod.namespace={stack.namespace}").split()
    assert len(ids) == 1, ids
    return int(json.loads(stack.node.crictl("inspect", ids[0]))["info"]["pid"])


def test_a_backup_is_refused_while_a_member_is_out_and_taken_when_forced(stack):
    env = dict(stack.node.cluster.env, ANSIBLE_FORCE_COLOR="0")
    assert wsrep_status(stack, "pxc-2")["wsrep_cluster_size"] == "3"
    pid = server_pid(stack, "pxc-1")
    os.kill(pid, signal.SIGSTOP)
    try:
        # Galera evicts the member that stopped answering: the others form a Primary component of 2.
        stack.wait_for(lambda: wsrep_status(stack, "pxc-2")["wsrep_cluster_size"] == "2", timeout=120,
                       what="pxc-1 out of the Primary component")
        held = ours()
        refused = run_site(env, "galera-backup-refused", playbook=PLAYBOOK)
        text = refused.log.read_text(errors="replace")
        assert refused.returncode != 0, refused.tail()
        assert "the Primary component has 2 of the 3 members" in text and "pxc_backup_force=true" in text, \
            refused.tail()
        assert ours() == held
        forced = run_site(env, "galera-backup-forced", "-e", "pxc_backup_force=true", playbook=PLAYBOOK)
        assert forced.returncode == 0, forced.tail()
        name = galera_jobs(stack)[-1]["metadata"]["annotations"]["kubess.io/backup-file"]
        assert name in ours() and name not in held
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass  # the liveness probe restarted the container meanwhile
    since = time.time()
    stack.wait_for(lambda: stack.ready("pxc-1") and wsrep_status(stack, "pxc-2")["wsrep_cluster_size"] == "3",
                   timeout=600, what="pxc-1 back in the cluster")
    print(f"pxc-1 back in the cluster {time.time() - since:.1f} s after SIGCONT")


RESTORED = "kubess-restore-galera"
PASSWORDS = {"pxc_root_password": "root-password", "pxc_xtrabackup_password": "xtrabackup-password",
             "pxc_monitor_password": "monitor-password", "pxc_clustercheck_password": "clustercheck-password",
             "pxc_wordpress_password": "wordpress-password"}


def restored_cluster(stack, env, namespace: str, name: str, passwords: dict, **extra):
    """The site with --tags pxc into a new namespace, restoring the backup ``name`` with the passwords of the cluster
    backed up (and ``extra``): (the restore Job's log, the markers each member holds and whether it is Synced). The
    caller removes the namespace's cluster (remove_cluster)."""
    shutil.rmtree(NFS_ROOT.parent / namespace, ignore_errors=True)
    restored = run_site(env, f"galera-restore-{namespace}", "--tags", "pxc",
                        "-e", json.dumps(dict(passwords, pxc_namespace=namespace, pxc_restore_from=name, **extra)))
    assert restored.returncode == 0, restored.tail()
    ns = ["-n", namespace]
    job = stack.node.cluster.get_json("job", "pxc-restore", *ns)
    assert job["status"].get("succeeded") == 1
    log = stack.kubectl("logs", *ns, "job/pxc-restore").stdout

    def rows(member: str) -> set[str]:
        done = stack.kubectl("exec", *ns, member, "-c", "pxc", "-i", "--", "mariadb",
                             "--defaults-extra-file=/dev/stdin", "--batch", "--skip-column-names", "-e",
                             f"{CAUSAL}SELECT marker FROM kubess_e2e.rows; "
                             "SHOW GLOBAL STATUS LIKE 'wsrep_local_state_comment'",
                             input=f"[client]\nuser=root\npassword={passwords['pxc_root_password']}\n")
        return set(done.stdout.split())

    return log, {member: rows(member) for member in MEMBERS}


def remove_cluster(env, namespace: str) -> None:
    gone = run_site(env, f"galera-restore-teardown-{namespace}", "--tags", "pxc",
                    "-e", json.dumps({"pxc_namespace": namespace, "pxc_state": "absent", "pxc_purge": True}))
    assert gone.returncode == 0, gone.tail()


def test_a_new_cluster_restored_from_a_backup_has_its_rows(stack):
    """A backup taken now, a row written after it; then the site with --tags pxc into a new namespace with
    pxc_restore_from and the passwords of the cluster backed up: pxc-0 bootstraps from the restored data directory,
    the others join it; every member is Synced, the row written before the backup is there, the one after is not."""
    env = dict(stack.node.cluster.env, ANSIBLE_FORCE_COLOR="0")
    ensure_table(stack, "rows")
    before, after = uuid.uuid4().hex, uuid.uuid4().hex
    sql(stack, "pxc-0", f"INSERT INTO kubess_e2e.rows (marker) VALUES ('{before}')")
    assert sql(stack, "pxc-2", f"{CAUSAL}SELECT marker FROM kubess_e2e.rows WHERE marker = '{before}'") == [[before]]
    taken = run_site(env, "galera-backup-for-restore", playbook=PLAYBOOK)
    assert taken.returncode == 0, taken.tail()
    name = galera_jobs(stack)[-1]["metadata"]["annotations"]["kubess.io/backup-file"]
    sql(stack, "pxc-0", f"INSERT INTO kubess_e2e.rows (marker) VALUES ('{after}')")

    # Over the running cluster: refused in the preflight, naming the variable.
    refused = run_site(env, "galera-restore-refused", "--tags", "pxc", "-e", f"pxc_restore_from={name}")
    assert refused.returncode != 0, refused.tail()
    assert f"pxc_restore_from names a backup, but the StatefulSet pxc exists in {stack.namespace}" in \
        refused.log.read_text(errors="replace"), refused.tail()

    passwords = {var: stack.secret("pxc-secrets", key) for var, key in PASSWORDS.items()}
    try:
        log, held = restored_cluster(stack, env, RESTORED, name, passwords)
        assert f"restored {name} into /var/lib/mysql: cluster " in log and "safe_to_bootstrap: 1" in log, log
        for member, seen in held.items():
            assert before in seen and after not in seen and "Synced" in seen, (member, sorted(seen)[:5])
        # pxc-0 started from the restored data directory at the backup's Galera position, marked safe to bootstrap.
        uuid_, seqno = re.search(r"cluster ([0-9a-f-]{36}) at seqno (-?\d+)", log).groups()
        first = stack.kubectl("logs", "-n", RESTORED, "pxc-0", "-c", "pxc").stdout
        assert f"uuid={uuid_} seqno={seqno} safe_to_bootstrap=1" in first, first[-2000:]
        # The same command again: the cluster says which backup it was made from, and nothing is restored or changed.
        again = run_site(env, f"galera-restore-again-{RESTORED}", "--tags", "pxc",
                         "-e", json.dumps(dict(passwords, pxc_namespace=RESTORED, pxc_restore_from=name)))
        assert again.returncode == 0 and again.recap["localhost"]["changed"] == 0, again.tail()
    finally:
        remove_cluster(env, RESTORED)


POINT_IN_TIME = "kubess-restore-pitr"


def test_a_cluster_restored_to_a_point_in_time_has_the_rows_committed_before_it_and_none_after(stack):
    """A backup; a row committed after it, then a time, then another row; the site with pxc_restore_from and
    pxc_restore_to_time into a new namespace: the restore Job brings the backup forward with the binary log
    archive's transactions before that time; every member is Synced with the row committed before the backup and the
    one after it and before the time, and not the one after the time."""
    env = dict(stack.node.cluster.env, ANSIBLE_FORCE_COLOR="0")
    ensure_table(stack, "rows")
    in_backup, before, after = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    sql(stack, "pxc-0", f"INSERT INTO kubess_e2e.rows (marker) VALUES ('{in_backup}')")
    assert sql(stack, "pxc-2", f"{CAUSAL}SELECT marker FROM kubess_e2e.rows WHERE marker = '{in_backup}'") == \
        [[in_backup]]
    taken = run_site(env, "galera-backup-for-pitr", playbook=PLAYBOOK)
    assert taken.returncode == 0, taken.tail()
    name = galera_jobs(stack)[-1]["metadata"]["annotations"]["kubess.io/backup-file"]
    sql(stack, "pxc-1", f"INSERT INTO kubess_e2e.rows (marker) VALUES ('{before}')")
    # The time: the next whole second after that commit (the node's clock is this machine's).
    target = int(time.time()) + 1
    stack.wait_for(lambda: time.time() >= target, timeout=5, what="the clock past the time")
    sql(stack, "pxc-1", f"INSERT INTO kubess_e2e.rows (marker) VALUES ('{after}')")
    for member in MEMBERS:
        stack.wait_for(lambda m=member: after in archived(stack, m), timeout=120, what=f"the last row in {member}'s archive")
    to_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(target))

    passwords = {var: stack.secret("pxc-secrets", key) for var, key in PASSWORDS.items()}
    try:
        log, held = restored_cluster(stack, env, POINT_IN_TIME, name, passwords, pxc_restore_to_time=to_time)
        assert re.search(r"applying 1 transactions of the archive of pxc-\d, 1-1-\d+ to 1-1-\d+", log), log
        assert f"restored {name} into /var/lib/mysql" in log, log
        for member, seen in held.items():
            assert {in_backup, before, "Synced"} <= seen and after not in seen, (member, sorted(seen)[:5])
    finally:
        remove_cluster(env, POINT_IN_TIME)
