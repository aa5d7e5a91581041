"""etcd backups and restore in real containers: the site's CronJob and backup volume, an on-demand snapshot taken by
the Job (etcdctl saves it, etcdutl checks it, the store container files it on the NFS export and prunes this cluster's
oldest), a restore refused over a running cluster before any write, a restore from a missing snapshot failing, then a
new cluster in another namespace restored from the snapshot on the same claims: the keys written before the snapshot
are there, the key written after it is not; the same restore again changes nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import uuid

from conftest import NFS_ROOT, OUTPUT, REPO, run_site
from test_etcd import endpoint

sys.path.insert(0, str(REPO / "molecule" / "shared"))
from audit_writes import writes  # noqa: E402 pylint: disable=wrong-import-position

BACKUPS = NFS_ROOT.parent / "backups" / "etcd"
RESTORED = "kubess-restore"
BACKUP_PLAYBOOK = REPO / "playbooks" / "etcd_backup.yml"
# The toolbox image's shell, as the e2e inventory says (etcd_backup_image).
ETCD_UID = 65532


def put(stack, key: str, value: str) -> None:
    stack.etcdctl("etcd-0", "put", key, value, endpoints=[endpoint("etcd-0", stack)])


def backup_jobs(stack) -> list[dict]:
    jobs = stack.get("jobs", "-l", "app.kubernetes.io/name=etcd-backup,app.kubernetes.io/component=backup")["items"]
    return sorted(jobs, key=lambda j: j["metadata"]["creationTimestamp"])


def test_the_site_keeps_a_backup_cronjob_and_volume(stack):
    cron = stack.get("cronjob", "etcd-backup")
    assert cron["spec"]["schedule"] == "0 3 * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    claim = stack.get("pvc", "etcd-backup")
    assert claim["status"]["phase"] == "Bound"
    volume = stack.node.cluster.get_json("pv", claim["spec"]["volumeName"])
    assert volume["spec"]["nfs"]["path"] == str(BACKUPS)
    assert (BACKUPS.stat().st_uid, BACKUPS.stat().st_gid) == (ETCD_UID, ETCD_UID)


def test_backup_then_restore_into_a_new_namespace(stack):
    env = dict(stack.node.cluster.env, ANSIBLE_FORCE_COLOR="0")
    token = uuid.uuid4().hex
    before = {f"/e2e/backup/{token}/{n}": uuid.uuid4().hex for n in range(3)}
    for key, value in before.items():
        put(stack, key, value)
    # Older snapshots of this cluster, and one of another cluster, on the export: the new snapshot keeps the newest
    # two of this cluster (etcd_backup_keep=2) and leaves the other's alone.
    BACKUPS.mkdir(parents=True, exist_ok=True)
    planted = ["kubess_etcd-20200101T000000Z.db", "kubess_etcd-20200102T000000Z.db", "other-etcd-20200101T000000Z.db"]
    for name in planted:
        (BACKUPS / name).write_text("an older snapshot\n")
        os.chown(BACKUPS / name, ETCD_UID, ETCD_UID)

    taken = run_site(env, "etcd-backup", "-e", "etcd_backup_keep=2", playbook=BACKUP_PLAYBOOK)
    assert taken.returncode == 0, taken.tail()
    job = backup_jobs(stack)[-1]
    snapshot = job["metadata"]["annotations"]["kubess.io/backup-file"]
    assert f"etcd snapshot {snapshot} on the claim etcd-backup" in taken.log.read_text(errors="replace")
    assert job["status"].get("succeeded") == 1
    stored = BACKUPS / snapshot
    # A bbolt file: at least its meta and freelist pages, and the data of the keys.
    assert stored.is_file() and stored.stat().st_size >= 16_384, sorted(p.name for p in BACKUPS.iterdir())
    assert stored.stat().st_uid == ETCD_UID
    names = sorted(p.name for p in BACKUPS.iterdir() if not p.name.startswith("."))
    # A former run's snapshots are older than this one's, and the planted 2020 ones older still: the newest two
    # are this run's and the one before it (a planted one when there was none).
    ours = [n for n in names if n.startswith("kubess_etcd-")]
    assert len(ours) == 2 and ours[-1] == snapshot, names
    assert "kubess_etcd-20200101T000000Z.db" not in names and "other-etcd-20200101T000000Z.db" in names
    # The check container's etcdutl read the snapshot whole (its status table: hash, revision, keys, size).
    pod = stack.get("pods", "-l", f"job-name={job['metadata']['name']}")["items"][0]["metadata"]["name"]
    checked = stack.kubectl("logs", "-n", stack.namespace, pod, "-c", "check").stdout
    assert "HASH" in checked and "TOTAL KEYS" in checked, checked

    # kubess.stateful.stack_info names it as the set's last snapshot.
    report_file = OUTPUT / "stack-info-backup.json"
    info = run_site(env, "stack-info-backup", "-e", json.dumps({"kubess_stack_info_file": str(report_file)}),
                    playbook=REPO / "playbooks" / "stack_info.yml")
    assert info.returncode == 0, info.tail()
    etcd = next(s for s in json.loads(report_file.read_text())["statefulsets"] if s["name"] == "etcd")
    assert etcd["backup"]["cronjob"] == "etcd-backup" and etcd["backup"]["schedule"] == "0 3 * * *"
    assert etcd["backup"]["last_succeeded"]["file"] == snapshot, etcd["backup"]
    assert etcd["backup"]["last_succeeded"]["job"] == job["metadata"]["name"]

    after_key = f"/e2e/backup/{token}/after"
    put(stack, after_key, "written after the snapshot")

    # Over the running cluster: refused in the preflight, naming the variable, nothing written.
    since = time.time()
    refused = run_site(env, "etcd-restore-refused", "--tags", "etcd", "-e", f"etcd_restore_from={snapshot}")
    with open(stack.node.cluster.audit_log, encoding="utf-8") as log:
        api_writes = [w for w in writes(log, since) if not w["uri"].split("?")[0].endswith("/exec")]
    text = refused.log.read_text(errors="replace")
    assert refused.returncode != 0, refused.tail()
    assert "etcd_restore_from names a snapshot, but the StatefulSet etcd exists in kubess" in text, refused.tail()
    assert api_writes == [], api_writes

    # A new cluster in another namespace, from the snapshot: its volumes are new (this test's own namespace; what a
    # former run of it left on the export is removed first).
    shutil.rmtree(NFS_ROOT.parent / RESTORED, ignore_errors=True)
    try:
        # First from a snapshot that is not on the volume: the restore Jobs fail, saying so, and no StatefulSet is made.
        missing = f"{RESTORED}_etcd-20200101T000000Z.db"
        failed = run_site(env, "etcd-restore-missing", "--tags", "etcd",
                          "-e", json.dumps({"etcd_namespace": RESTORED, "etcd_restore_from": missing}))
        text = failed.log.read_text(errors="replace")
        assert failed.returncode != 0, failed.tail()
        assert f"etcd_restore_from: restoring {missing} failed" in text, failed.tail()
        assert re.search(r"etcd-restore-[0-2]", text), failed.tail()
        assert stack.node.cluster.get_json("statefulsets", "-n", RESTORED)["items"] == []
        # In check mode, with the failed Jobs still there: the run reports what it would change and writes nothing
        # (a dry-run apply of the new Jobs over the failed ones would be refused: a Job's template is immutable).
        since = time.time()
        checked = run_site(env, "etcd-restore-check", "--check", "--tags", "etcd",
                           "-e", json.dumps({"etcd_namespace": RESTORED, "etcd_restore_from": snapshot}))
        with open(stack.node.cluster.audit_log, encoding="utf-8") as log:
            api_writes = [w for w in writes(log, since) if not w["uri"].split("?")[0].endswith("/exec")]
        assert checked.returncode == 0 and checked.recap["localhost"]["changed"] > 0, checked.tail()
        assert api_writes == [], api_writes
        # Then from the snapshot: the failed Jobs are deleted first, and the restore runs again on the same claims.
        restored = run_site(env, "etcd-restore", "--tags", "etcd",
                            "-e", json.dumps({"etcd_namespace": RESTORED, "etcd_restore_from": snapshot}))
        assert restored.returncode == 0, restored.tail()
        ns = ["-n", RESTORED]
        jobs = stack.node.cluster.get_json("jobs", *ns, "-l", "app.kubernetes.io/component=restore")["items"]
        assert sorted(j["metadata"]["name"] for j in jobs) == ["etcd-restore-0", "etcd-restore-1", "etcd-restore-2"]
        assert all(j["status"].get("succeeded") == 1 for j in jobs)

        def etcdctl(*args: str) -> str:
            return stack.kubectl("exec", *ns, "etcd-0", "--", "etcdctl", "--endpoints=https://127.0.0.1:2379",
                                 *args).stdout

        listed = json.loads(etcdctl("member", "list", "-w", "json"))["members"]
        assert sorted(m["name"] for m in listed) == ["etcd-0", "etcd-1", "etcd-2"]
        assert all(m["peerURLs"] == [f"https://{m['name']}.etcd.{RESTORED}.svc.cluster.local:2380"] for m in listed)
        original = json.loads(stack.etcdctl("etcd-0", "endpoint", "status", "-w", "json").stdout)[0]
        status = json.loads(etcdctl("endpoint", "status", "-w", "json"))[0]
        # A cluster of its own (etcdutl gave it a new id), not members joined to the running one.
        assert status["Status"]["header"]["cluster_id"] != original["Status"]["header"]["cluster_id"]
        for key, value in before.items():
            assert etcdctl("get", key, "--print-value-only").strip() == value, key
        assert etcdctl("get", after_key, "--print-value-only").strip() == ""
        # Its data on its own volumes, as the members' uid.
        data = NFS_ROOT.parent / RESTORED / "data-etcd-1" / "data" / "member"
        assert data.is_dir() and data.stat().st_uid == ETCD_UID
        # The same command again: the cluster says which snapshot it was made from; nothing is restored or changed.
        again = run_site(env, "etcd-restore-again", "--tags", "etcd",
                         "-e", json.dumps({"etcd_namespace": RESTORED, "etcd_restore_from": snapshot}))
        assert again.returncode == 0 and again.recap["localhost"]["changed"] == 0, again.tail()
        # A run without etcd_restore_from keeps the annotation: no change, and the restore command stays a no-op.
        plain = run_site(env, "etcd-restored-rerun", "--tags", "etcd", "-e", json.dumps({"etcd_namespace": RESTORED}))
        assert plain.returncode == 0 and plain.recap["localhost"]["changed"] == 0, plain.tail()
        annotations = stack.node.cluster.get_json("statefulset", "etcd", *ns)["metadata"]["annotations"]
        assert annotations["kubess.io/restored-from"] == snapshot, annotations
    finally:
        gone = run_site(env, "etcd-restore-teardown", "--tags", "etcd", "-e",
                        json.dumps({"etcd_namespace": RESTORED, "etcd_state": "absent", "etcd_purge": True}))
    assert gone.returncode == 0, gone.tail()
