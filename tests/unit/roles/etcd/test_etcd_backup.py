"""The etcd role's backups and restore as Ansible renders them from the role's defaults and vars (the CronJob, the
on-demand Job, the restore claims and Jobs, the volume layout, the input rules), and the script that stores and
prunes the snapshots, run in a shell on files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from role_vars import backup_pod, render  # noqa: E402 pylint: disable=wrong-import-position

BACKUP = {"etcd_backup": "true"}
STAMP = {"etcd__backup_stamp": "20261203T101500Z", "etcd__backup_epoch": "1796292900"}
MEMBER_SELECTOR = {"app.kubernetes.io/name": "etcd", "app.kubernetes.io/instance": "etcd"}


def pod_spec(job: dict) -> dict:
    return job["spec"]["template"]["spec"]


def containers(spec: dict) -> list[dict]:
    return spec.get("initContainers", []) + spec["containers"]


@pytest.fixture(scope="module")
def cronjob() -> dict:
    (made,) = render("etcd", "etcd__backup_cronjob", BACKUP)
    return made


@pytest.fixture(scope="module")
def job() -> dict:
    return render("etcd", "etcd__backup_job", dict(BACKUP, etcd_name="e" * 45), facts=STAMP)


def test_the_cronjob_takes_checks_and_stores_a_snapshot(cronjob):
    assert cronjob["kind"] == "CronJob" and cronjob["metadata"]["name"] == "etcd-backup"
    assert cronjob["spec"]["schedule"] == "0 3 * * *" and cronjob["spec"]["timeZone"] == "Etc/UTC"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    spec = pod_spec(cronjob["spec"]["jobTemplate"])
    snapshot, check, store = containers(spec)
    # The distroless etcd image runs its own binaries only; the shell runs in etcd_backup_image.
    assert snapshot["command"] == ["/usr/local/bin/etcdctl"]
    assert snapshot["args"][-3:] == ["snapshot", "save", "/scratch/snapshot.db"]
    assert "--endpoints=https://etcd-client.kubess.svc.cluster.local:2379" in snapshot["args"]
    assert {e["name"]: e["value"] for e in snapshot["env"]} == {
        "ETCDCTL_CACERT": "/etc/etcd/tls/ca.crt", "ETCDCTL_CERT": "/etc/etcd/tls/tls.crt",
        "ETCDCTL_KEY": "/etc/etcd/tls/tls.key"}
    assert {"name": "tls", "secret": {"secretName": "etcd-tls-client", "defaultMode": 0o440}} in spec["volumes"]
    assert check["command"] == ["/usr/local/bin/etcdutl"]
    assert check["args"][:3] == ["snapshot", "status", "/scratch/snapshot.db"]
    assert snapshot["image"] == check["image"] == "gcr.io/etcd-development/etcd:v3.6.16"
    assert store["image"] == "docker.io/library/busybox:1.37" and store["command"] == ["sh", "-c"]
    env = {e["name"]: e["value"] for e in store["env"]}
    assert env == {"KUBESS_BACKUP_PREFIX": "kubess_etcd", "KUBESS_BACKUP_KEEP": "7", "KUBESS_BACKUP_NAME": ""}
    assert {"name": "backup", "persistentVolumeClaim": {"claimName": "etcd-backup"}} in spec["volumes"]


@pytest.mark.parametrize("kind", ["cronjob", "job"])
def test_backup_pods_are_restricted_placed_like_the_members_and_selected_by_nothing_of_theirs(kind, request):
    made = request.getfixturevalue(kind)
    spec = backup_pod(made, "etcd-backup", deadline=None)
    labels = (made["spec"]["jobTemplate"] if kind == "cronjob" else made)["spec"]["template"]["metadata"]["labels"]
    assert not all(labels.get(k) == v for k, v in MEMBER_SELECTOR.items()), labels
    assert spec["securityContext"]["runAsUser"] == 65532
    assert spec["nodeSelector"] == {"kubess.io/etcd": "true"}


def test_the_job_taken_now_is_named_within_the_label_limit_and_says_its_file(job):
    assert job["kind"] == "Job"
    assert job["metadata"]["name"] == "e" * 45 + "-backup-1796292900" and len(job["metadata"]["name"]) <= 63
    assert job["metadata"]["annotations"] == {"kubess.io/backup-file": "kubess_" + "e" * 45 + "-20261203T101500Z.db"}
    store = pod_spec(job)["containers"][0]
    assert {"name": "KUBESS_BACKUP_NAME", "value": "kubess_" + "e" * 45 + "-20261203T101500Z.db"} in store["env"]


@pytest.mark.parametrize("extra", [{}, {"etcd_backup": "true", "etcd_backup_schedule": ""}])
def test_no_cronjob_without_backups_or_schedule(extra):
    assert render("etcd", "etcd__backup_cronjob", extra) == []


def test_the_backup_volume_is_in_the_layout_shared_by_directory():
    assert render("etcd", "etcd__volumes", {})[-1].get("claim") is None
    restore = {"etcd_restore_from": "kubess_etcd-20261203T101500Z.db", "etcd_namespace": "restored"}
    volumes = render("etcd", "etcd__volumes", restore)
    assert volumes[-1] == {"claim": "etcd-backup", "namespace": "restored", "directory": "backups/etcd",
                           "size": "2Gi", "storage_class": "kubess-nfs", "access_modes": ["ReadWriteMany"],
                           "owner": 65532, "group": 65532, "mode": "0700"}


def test_restore_makes_the_sets_claims_and_one_job_per_member_with_this_clusters_names():
    restore = {"etcd_restore_from": "kubess_etcd-20261203T101500Z.db", "etcd_namespace": "restored", "etcd_replicas": "3"}
    claims = render("etcd", "etcd__restore_claims", restore)
    jobs = render("etcd", "etcd__restore_jobs", restore)
    assert {m["kind"] for m in claims} == {"PersistentVolumeClaim"} and {m["kind"] for m in jobs} == {"Job"}
    assert [c["metadata"]["name"] for c in claims] == ["data-etcd-0", "data-etcd-1", "data-etcd-2"]
    assert all(c["metadata"]["namespace"] == "restored" and c["spec"]["storageClassName"] == "kubess-nfs"
               for c in claims)
    assert [j["metadata"]["name"] for j in jobs] == ["etcd-restore-0", "etcd-restore-1", "etcd-restore-2"]
    peers = ",".join(f"etcd-{n}=https://etcd-{n}.etcd.restored.svc.cluster.local:2380" for n in range(3))
    for n, made_job in enumerate(jobs):
        (container,) = pod_spec(made_job)["initContainers"]
        (place,) = pod_spec(made_job)["containers"]
        assert place["image"] == "docker.io/library/busybox:1.37" and place["command"] == ["sh", "-c"]
        assert {"name": "data", "mountPath": "/var/lib/etcd"} in place["volumeMounts"]
        assert container["command"] == ["/usr/local/bin/etcdutl"]
        assert container["args"] == [
            "snapshot", "restore", "/backup/kubess_etcd-20261203T101500Z.db", "--data-dir=/scratch/data",
            f"--name=etcd-{n}", f"--initial-cluster={peers}", "--initial-cluster-token=restored-etcd",
            f"--initial-advertise-peer-urls=https://etcd-{n}.etcd.restored.svc.cluster.local:2380"]
        volumes = {v["name"]: v["persistentVolumeClaim"] for v in pod_spec(made_job)["volumes"]
                   if "persistentVolumeClaim" in v}
        assert volumes == {"data": {"claimName": f"data-etcd-{n}"},
                           "backup": {"claimName": "etcd-backup", "readOnly": True}}


RESTORE = {"etcd_restore_from": "kubess_etcd-20261203T101500Z.db", "etcd_namespace": "restored"}


def test_the_cluster_and_its_restore_jobs_name_the_snapshot_they_were_made_from():
    jobs = render("etcd", "etcd__restore_jobs", RESTORE)
    assert [j["metadata"]["annotations"] for j in jobs] == [{"kubess.io/restored-from": RESTORE["etcd_restore_from"]}] * 3
    made = [m for m in render("etcd", "etcd__manifests", RESTORE) if m["kind"] == "StatefulSet"]
    assert made[0]["metadata"]["annotations"]["kubess.io/restored-from"] == RESTORE["etcd_restore_from"]
    made = [m for m in render("etcd", "etcd__manifests", {}) if m["kind"] == "StatefulSet"]
    assert "kubess.io/restored-from" not in made[0]["metadata"]["annotations"]


def restore_rule(existing: list[dict]) -> dict:
    rules = render("etcd", "etcd__cluster_rules", RESTORE, facts={"etcd__cluster": {"statefulset": existing, "nodes": []}})
    (rule,) = [r for r in rules if r["var"] == "etcd_restore_from"]
    return rule


def test_a_restore_over_a_running_cluster_is_refused_unless_that_cluster_was_made_from_the_same_snapshot():
    assert restore_rule([])["ok"]
    rule = restore_rule([{"metadata": {"name": "etcd"}}])
    assert not rule["ok"] and "the StatefulSet etcd exists in restored (not made from a snapshot)" in rule["msg"]
    made_from = {"metadata": {"name": "etcd", "annotations": {"kubess.io/restored-from": RESTORE["etcd_restore_from"]}}}
    assert restore_rule([made_from])["ok"], "the same restore again restores nothing and is not refused"
    other = {"metadata": {"name": "etcd", "annotations": {"kubess.io/restored-from": "restored_etcd-2020.db"}}}
    rule = restore_rule([other])
    assert not rule["ok"] and "(made from restored_etcd-2020.db)" in rule["msg"]


def test_the_restore_reads_no_jobs():
    # kubess.stateful.job_run reads the restore Jobs itself when it runs them.
    assert not [read for read in render("etcd", "etcd__reads", RESTORE).values() if read["kind"] == "Job"]


@pytest.mark.parametrize("var, value, fragment", [
    ("etcd_backup_keep", "0", "etcd_backup_keep "),
    ("etcd_backup_schedule", "daily", "etcd_backup_schedule must be empty or a cron schedule"),
    ("etcd_backup_time_zone", "Not:a:zone", "etcd_backup_time_zone must be an IANA time zone"),
    ("etcd_backup_directory", "../elsewhere", "etcd_backup_directory must be a relative path"),
    ("etcd_backup_directory", "/abs", "etcd_backup_directory must be a relative path"),
    ("etcd_backup_image", "", "etcd_backup_image "),
    ("etcd_backup_size", "lots", "etcd_backup_size "),
    ("etcd_restore_from", "../../etc/passwd", "etcd_restore_from must be the file name of a snapshot"),
    ("etcd_name", "e" * 46, "etcd_name must be at most 45 characters with etcd_backup"),
])
def test_bad_backup_input_is_refused_naming_the_variable(var, value, fragment):
    problems = render("etcd", "etcd__input_problems", dict(BACKUP, **{var: value}))
    assert any(p.startswith(fragment) for p in problems), problems


def test_good_backup_input_has_no_problem():
    good = dict(BACKUP, etcd_backup_schedule="@daily", etcd_restore_from="kubess_etcd-20261203T101500Z.db")
    assert render("etcd", "etcd__input_problems", good) == []


def test_teardown_removes_the_cronjob_and_jobs_by_their_labels():
    entries = {e["kind"]: e for e in render("etcd", "etcd__teardown", {"etcd_state": "absent"})}
    for kind in ("CronJob", "Job"):
        assert sorted(entries[kind]["selectors"]) == [
            "app.kubernetes.io/instance=etcd", "app.kubernetes.io/managed-by=kubess.stateful",
            "app.kubernetes.io/name=etcd-backup"]


# --- The store script, run by sh on files ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def script() -> str:
    return render("etcd", "etcd__backup_store_script", {})


def store(script: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    full = dict(os.environ, KUBESS_BACKUP_SNAPSHOT=str(tmp_path / "snapshot.db"), KUBESS_BACKUP_DIR=str(tmp_path / "b"),
                KUBESS_BACKUP_PREFIX="kubess-eu_etcd", KUBESS_BACKUP_KEEP="2", KUBESS_BACKUP_NAME="")
    full.update(env)
    return subprocess.run(["sh", "-c", script], env=full, capture_output=True, text=True, check=False)


def test_the_script_stores_the_snapshot_and_keeps_the_newest_of_this_cluster_only(script, tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "snapshot.db").write_bytes(b"snapshot")
    # kubess_eu-etcd: etcd in kubess, which with '-' in the prefix would have shared this cluster's (kubess-eu-etcd).
    others = ["kubess-eu_etcd-x-20200101T000000Z.db", "kubess-eu_etcdx-20200101T000000Z.db", "notes.txt",
              "kubess-eu_etcd-20200101T000000Z.db.bak", "kubess_eu-etcd-20200101T000000Z.db",
              "kubess-eu-etcd-20200101T000000Z.db"]
    old = ["kubess-eu_etcd-20250101T000000Z.db", "kubess-eu_etcd-20260101T000000Z.db", "kubess-eu_etcd-20240101T000000Z.db"]
    for name in others + old:
        (tmp_path / "b" / name).write_text("x")
    done = store(script, tmp_path, KUBESS_BACKUP_NAME="kubess-eu_etcd-20261203T101500Z.db")
    assert done.returncode == 0, done.stderr
    assert "stored kubess-eu_etcd-20261203T101500Z.db" in done.stdout
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(
        others + ["kubess-eu_etcd-20260101T000000Z.db", "kubess-eu_etcd-20261203T101500Z.db"])
    assert (tmp_path / "b" / "kubess-eu_etcd-20261203T101500Z.db").read_bytes() == b"snapshot"
    assert "deleted kubess-eu_etcd-20240101T000000Z.db" in done.stdout


def test_the_script_names_a_snapshot_after_the_utc_time_when_not_told(script, tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "snapshot.db").write_bytes(b"s")
    done = store(script, tmp_path)
    assert done.returncode == 0, done.stderr
    (made,) = [p.name for p in (tmp_path / "b").iterdir()]
    assert made.startswith("kubess-eu_etcd-") and made.endswith("Z.db") and len(made) == len("kubess-eu_etcd-") + 16 + 3


def test_the_script_fails_and_stores_nothing_without_a_snapshot(script, tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "kubess-eu_etcd-20250101T000000Z.db").write_text("x")
    done = store(script, tmp_path)
    assert done.returncode != 0
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["kubess-eu_etcd-20250101T000000Z.db"]


@pytest.fixture(scope="module")
def place_script() -> str:
    return render("etcd", "etcd__restore_place_script", {})


def run_place(script: str, root: Path) -> subprocess.CompletedProcess:
    # The script's paths, under a temporary root.
    local = script.replace("/var/lib/etcd", str(root / "volume")).replace("/scratch", str(root / "scratch"))
    return subprocess.run(["sh", "-c", local], capture_output=True, text=True, check=False)


def test_the_restored_data_directory_is_placed_whole_with_its_modes(place_script, tmp_path):
    restored = tmp_path / "scratch" / "data" / "member" / "wal"
    restored.mkdir(parents=True)
    (tmp_path / "scratch" / "data").chmod(0o700)
    (restored / "0000000000000000-0000000000000000.wal").write_bytes(b"wal")
    (tmp_path / "volume").mkdir()
    done = run_place(place_script, tmp_path)
    assert done.returncode == 0, done.stderr
    placed = tmp_path / "volume" / "data"
    assert (placed / "member" / "wal" / "0000000000000000-0000000000000000.wal").read_bytes() == b"wal"
    assert placed.stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in (tmp_path / "volume").iterdir()) == ["data"]


def test_a_volume_that_holds_a_data_directory_is_left_as_it_is(place_script, tmp_path):
    (tmp_path / "scratch" / "data").mkdir(parents=True)
    (tmp_path / "scratch" / "data" / "new").write_text("restored")
    (tmp_path / "volume" / "data").mkdir(parents=True)
    (tmp_path / "volume" / "data" / "old").write_text("kept")
    done = run_place(place_script, tmp_path)
    assert done.returncode != 0 and "already holds a data directory" in done.stderr
    assert [p.name for p in (tmp_path / "volume" / "data").iterdir()] == ["old"]


def test_every_job_of_the_role_is_placed_with_the_members_tolerations_and_never_retried():
    toleration = {"key": "kubess.io/real-node", "operator": "Exists", "effect": "NoSchedule"}
    extra = {"etcd_backup": "true", "etcd_restore_from": "kubess_etcd-20261203T101500Z.db",
             "etcd_wait_timeout": "300", "etcd_tolerations": [toleration]}
    facts = STAMP
    made = render("etcd", "etcd__backup_cronjob", extra, facts=facts)[0]["spec"]["jobTemplate"]
    jobs = [made] + [render("etcd", "etcd__backup_job", extra, facts=facts)]
    jobs += render("etcd", "etcd__restore_jobs", extra, facts=facts)
    assert len(jobs) == 5
    for job in jobs:
        assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] == 300
        assert job["spec"]["ttlSecondsAfterFinished"] == 86400
        spec = pod_spec(job)
        assert spec["tolerations"] == [toleration] and spec["nodeSelector"] == {"kubess.io/etcd": "true"}
        assert spec["restartPolicy"] == "Never" and spec["securityContext"]["runAsUser"] == 65532
        assert spec["containers"] and spec["initContainers"] and spec["volumes"]
