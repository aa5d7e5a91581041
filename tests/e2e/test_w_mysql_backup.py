"""Backups of the MySQL replication set in real containers (the MariaDB flavour): the site's CronJob and backup
volume; a backup taken on demand from mysql-2's backup sidecar (it checks its replication first) by a Job of the set's
image, gzipped onto the NFS export, this set's oldest pruned; refused while mysql-2's SQL thread is stopped; then a new
set restored from that backup into another namespace, with a Secret of its own: mysql-0 starts from it as the
primary, the replicas are seeded from it, the row written before the backup is on each and the row written after it on
none, a new row reaches the last replica, and the same restore command again changes nothing."""

from __future__ import annotations

import base64
import json
import os
import shutil
import uuid

from conftest import NFS_ROOT, OUTPUT, REPO, run_site

BACKUPS = NFS_ROOT.parent / "backups" / "mysql"
PLAYBOOK = REPO / "playbooks" / "mysql_replication_backup.yml"
SECRET = "mysql-credentials"
MYSQL_UID = 999
RESTORED = "kubess-restore-mysql"
MEMBERS = ["mysql-0", "mysql-1", "mysql-2"]


def sql(stack, member: str, statement: str, namespace: str | None = None, password: str | None = None):
    password = password or stack.secret(SECRET, "root-password")
    done = stack.kubectl("exec", "-n", namespace or stack.namespace, "-i", member, "-c", "mysql", "--", "mariadb",
                         "--defaults-extra-file=/dev/stdin", "--batch", "--skip-column-names", "-e", statement,
                         input=f"[client]\nuser=root\npassword={password}\n")
    return [line.split("\t") for line in done.stdout.splitlines()]


def ensure_table(stack) -> None:
    sql(stack, "mysql-0", "CREATE DATABASE IF NOT EXISTS kubess_e2e; "
                          "CREATE TABLE IF NOT EXISTS kubess_e2e.rows (marker VARCHAR(64) PRIMARY KEY)")


def markers(stack, member: str, namespace: str | None = None, password: str | None = None) -> set[str]:
    return {row[0] for row in sql(stack, member, "SELECT marker FROM kubess_e2e.rows", namespace, password)}


def backup_jobs(stack) -> list[dict]:
    jobs = stack.get("jobs", "-l", "app.kubernetes.io/name=mysql-backup,app.kubernetes.io/component=backup")["items"]
    return sorted(jobs, key=lambda j: j["metadata"]["creationTimestamp"])


def ours() -> list[str]:
    return sorted(p.name for p in BACKUPS.iterdir() if p.name.startswith("kubess_mysql-"))


def test_the_site_keeps_a_mysql_backup_cronjob_and_volume(stack):
    cron = stack.get("cronjob", "mysql-backup")
    assert cron["spec"]["schedule"] == "45 2 * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    claim = stack.get("pvc", "mysql-backup")
    assert claim["status"]["phase"] == "Bound"
    volume = stack.node.cluster.get_json("pv", claim["spec"]["volumeName"])
    assert volume["spec"]["nfs"]["path"] == str(BACKUPS)
    assert (BACKUPS.stat().st_uid, BACKUPS.stat().st_gid) == (MYSQL_UID, MYSQL_UID)


def test_a_backup_of_the_last_replica_restores_a_new_set_with_the_rows_written_before_it(stack):
    env = dict(stack.node.cluster.env, ANSIBLE_FORCE_COLOR="0")
    ensure_table(stack)
    before, after, restored_row = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    sql(stack, "mysql-0", f"INSERT INTO kubess_e2e.rows VALUES ('{before}')")
    stack.wait_for(lambda: before in markers(stack, "mysql-2"), timeout=60, what="the row on mysql-2")
    # Older backups of this set, and one of another set: the new one keeps this set's newest two
    # (mysql_replication_backup_keep=2) and leaves the other's alone.
    BACKUPS.mkdir(parents=True, exist_ok=True)
    for name in ("kubess_mysql-20200101T000000Z.mbstream.gz", "kubess_mysql-20200102T000000Z.mbstream.gz",
                 "other-mysql-20200101T000000Z.mbstream.gz"):
        (BACKUPS / name).write_bytes(b"an older backup\n")
        os.chown(BACKUPS / name, MYSQL_UID, MYSQL_UID)

    # mysql-2's SQL thread stopped: its sidecar refuses, and nothing is stored.
    sql(stack, "mysql-2", "STOP SLAVE SQL_THREAD")
    try:
        held = ours()
        refused = run_site(env, "mysql-backup-refused", playbook=PLAYBOOK)
        text = refused.log.read_text(errors="replace")
        assert refused.returncode != 0, refused.tail()
        assert "cannot give a backup now: mysql-2 is Slave_IO_Running=Yes Slave_SQL_Running=No" in text, refused.tail()
        assert ours() == held
    finally:
        sql(stack, "mysql-2", "START SLAVE SQL_THREAD")
    stack.wait_for(lambda: stack.ready("mysql-2"), timeout=120, what="mysql-2 Ready again")

    held = ours()
    taken = run_site(env, "mysql-backup", "-e", "mysql_replication_backup_keep=2", playbook=PLAYBOOK)
    assert taken.returncode == 0, taken.tail()
    job = backup_jobs(stack)[-1]
    name = job["metadata"]["annotations"]["kubess.io/backup-file"]
    # The callback may fold the message: compared with its blanks made single spaces.
    assert f"MySQL backup {name} on the claim mysql-backup" in " ".join(taken.log.read_text(errors="replace").split())
    sql(stack, "mysql-0", f"INSERT INTO kubess_e2e.rows VALUES ('{after}')")
    log = stack.kubectl("logs", "-n", stack.namespace, f"job/{job['metadata']['name']}").stdout
    assert f"stored {name}" in log.splitlines(), log
    assert "deleted kubess_mysql-20200101T000000Z.mbstream.gz" in log.splitlines(), log
    sidecar = stack.kubectl("logs", "-n", stack.namespace, "mysql-2", "-c", "backup-server").stdout
    assert "streaming a backup of /var/lib/mysql/data (a backup)" in sidecar, sidecar[-2000:]
    stored = BACKUPS / name
    assert stored.is_file() and stored.stat().st_uid == MYSQL_UID and stored.stat().st_size > 100_000
    assert ours() == sorted(held + [name])[-2:] and name in ours()
    assert (BACKUPS / "other-mysql-20200101T000000Z.mbstream.gz").exists()

    # kubess.stateful.stack_info names it as the set's last backup.
    report_file = OUTPUT / "stack-info-mysql-backup.json"
    info = run_site(env, "stack-info-mysql-backup", "-e", json.dumps({"kubess_stack_info_file": str(report_file)}),
                    playbook=REPO / "playbooks" / "stack_info.yml")
    assert info.returncode == 0, info.tail()
    mysql = next(s for s in json.loads(report_file.read_text())["statefulsets"] if s["name"] == "mysql")
    assert mysql["backup"]["cronjob"] == "mysql-backup" and mysql["backup"]["last_succeeded"]["file"] == name, \
        mysql["backup"]

    # Over the running set: refused in the preflight, naming the variable.
    refused = run_site(env, "mysql-restore-refused", "--tags", "mysql_replication",
                       "-e", f"mysql_replication_restore_from={name}")
    assert refused.returncode != 0, refused.tail()
    assert f"mysql_replication_restore_from names a backup, but the StatefulSet mysql exists in {stack.namespace}" in \
        refused.log.read_text(errors="replace"), refused.tail()

    # The new set's Secret is made as for any new set (no password given): the restore gives it to the accounts.
    shutil.rmtree(NFS_ROOT.parent / RESTORED, ignore_errors=True)
    restore = ["--tags", "mysql_replication", "-e",
               json.dumps({"mysql_replication_namespace": RESTORED, "mysql_replication_restore_from": name})]
    try:
        restored = run_site(env, "mysql-restore", *restore)
        assert restored.returncode == 0, restored.tail()
        job = stack.node.cluster.get_json("job", "mysql-restore", "-n", RESTORED)
        assert job["status"].get("succeeded") == 1
        log = stack.kubectl("logs", "-n", RESTORED, "job/mysql-restore").stdout
        assert f"restored {name}: mysql-0 starts from it" in log, log
        secret = stack.node.cluster.get_json("secret", SECRET, "-n", RESTORED)["data"]
        root = base64.b64decode(secret["root-password"]).decode()
        assert root != stack.secret(SECRET, "root-password")
        for member in MEMBERS:
            seen = markers(stack, member, RESTORED, root)
            assert before in seen and after not in seen, (member, sorted(seen)[:5])
        first = stack.kubectl("logs", "-n", RESTORED, "mysql-0", "-c", "init-mysql").stdout
        assert "data directory already initialised" in first, first
        sql(stack, "mysql-0", f"INSERT INTO kubess_e2e.rows VALUES ('{restored_row}')", RESTORED, root)
        stack.wait_for(lambda: restored_row in markers(stack, "mysql-2", RESTORED, root), timeout=60,
                       what="the new row on the restored set's mysql-2")
        # The same command again: the set says which backup it was made from, and nothing is restored or changed.
        again = run_site(env, "mysql-restore-again", *restore)
        assert again.returncode == 0 and again.recap["localhost"]["changed"] == 0, again.tail()
        assert restored_row in markers(stack, "mysql-0", RESTORED, root)
    finally:
        gone = run_site(env, "mysql-restore-teardown", "--tags", "mysql_replication", "-e",
                        json.dumps({"mysql_replication_namespace": RESTORED, "mysql_replication_state": "absent",
                                    "mysql_replication_purge": True}))
        assert gone.returncode == 0, gone.tail()
