"""The mysql_replication role's backups and restore as Ansible renders them from the role's defaults and vars (the
CronJob, the on-demand Job, the restore's claim and Job, the volume layout, the input and cluster rules, the
teardown). What the Jobs' script does is shown against a real server in test_mysql_replication_mariadb.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from role_vars import backup_pod, render  # noqa: E402 pylint: disable=wrong-import-position

ROLE = Path(__file__).resolve().parents[4] / "roles" / "mysql_replication"
SCRIPT = (ROLE / "files" / "mysql-replication.sh").read_text(encoding="utf-8").rstrip("\n")
BACKUP = {"mysql_replication_backup": "true", "mysql_replication_flavor": "mariadb"}
STAMP = {"mysql_replication__backup_stamp": "20261204T024500Z", "mysql_replication__backup_epoch": "1796352300"}
RESTORE = {"mysql_replication_flavor": "mariadb", "mysql_replication_namespace": "restored",
           "mysql_replication_restore_from": "shop_mysql-20261204T024500Z.mbstream.gz"}


def pod_spec(job: dict) -> dict:
    return job["spec"]["template"]["spec"]


def env_of(container: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.fixture(scope="module")
def cronjob() -> dict:
    (made,) = render("mysql_replication", "mysql_replication__backup_cronjob",
                     dict(BACKUP, mysql_replication_replicas="4", mysql_replication_namespace="shop",
                          mysql_replication_tolerations=[{"key": "t", "operator": "Exists"}]))
    return made


@pytest.fixture(scope="module")
def job() -> dict:
    return render("mysql_replication", "mysql_replication__backup_job",
                  dict(BACKUP, mysql_replication_name="m" * 45, mysql_replication_backup_force="true"), facts=STAMP)


def test_the_cronjob_stores_a_backup_of_the_highest_ordinal_by_the_sets_script(cronjob):
    assert cronjob["kind"] == "CronJob" and cronjob["metadata"]["name"] == "mysql-backup"
    assert (cronjob["spec"]["schedule"], cronjob["spec"]["timeZone"]) == ("45 2 * * *", "Etc/UTC")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    spec = pod_spec(cronjob["spec"]["jobTemplate"])
    (store,) = spec["containers"]
    assert store["image"] == "mariadb:10.11.18"
    assert store["command"] == ["bash", "-c", SCRIPT, "mysql-replication.sh", "store-backup"]
    env = env_of(store)
    assert (env["KUBESS_BACKUP_ORDINAL"], env["KUBESS_BACKUP_PREFIX"], env["KUBESS_BACKUP_NAME"]) == ("3", "shop_mysql", "")
    assert (env["KUBESS_BACKUP_KEEP"], env["KUBESS_BACKUP_FORCE"], env["KUBESS_BACKUP_DIR"]) == ("7", "0", "/backup")
    assert env["KUBESS_CLONE_PASSWORD"] == {"secretKeyRef": {"name": "mysql-credentials", "key": "clone-password"}}
    assert (env["KUBESS_SET_NAME"], env["KUBESS_FLAVOR"], env["KUBESS_BACKUP_PORT"]) == ("mysql", "mariadb", "3307")
    assert not [name for name in env if name.startswith(("MARIADB_", "MYSQL_"))], "the image's variables are the pods'"
    # Of the passwords, the backup pod answers the sidecar's challenge with the clone password only.
    assert not {"KUBESS_ROOT_PASSWORD", "KUBESS_REPLICATION_PASSWORD", "KUBESS_APP_PASSWORD"} & set(env)
    assert {v["name"]: v.get("persistentVolumeClaim") for v in spec["volumes"]}["backup"] == {"claimName": "mysql-backup"}
    assert spec["tolerations"] == [{"key": "t", "operator": "Exists"}]


@pytest.mark.parametrize("kind", ["cronjob", "job"])
def test_backup_pods_are_restricted_never_retried_and_selected_by_nothing_of_the_set(kind, request):
    spec = backup_pod(request.getfixturevalue(kind), "mysql-backup")
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 999, "runAsGroup": 999, "fsGroup": 999,
                                       "seccompProfile": {"type": "RuntimeDefault"}}
    assert len(spec["containers"]) == 1


def test_the_job_taken_now_is_named_within_the_label_limit_says_its_file_and_may_be_forced(job):
    assert job["metadata"]["name"] == "m" * 45 + "-backup-1796352300" and len(job["metadata"]["name"]) <= 63
    name = "mysql_" + "m" * 45 + "-20261204T024500Z.mbstream.gz"
    assert job["metadata"]["annotations"] == {"kubess.io/backup-file": name}
    env = env_of(pod_spec(job)["containers"][0])
    assert env["KUBESS_BACKUP_NAME"] == name and env["KUBESS_BACKUP_FORCE"] == "1"


@pytest.mark.parametrize("extra", [{}, dict(BACKUP, mysql_replication_backup_schedule="")])
def test_no_cronjob_without_backups_or_schedule(extra):
    assert render("mysql_replication", "mysql_replication__backup_cronjob", extra) == []


def test_the_backup_volume_is_in_the_layout_shared_by_directory():
    assert render("mysql_replication", "mysql_replication__volumes", {})[-1].get("claim") is None
    volumes = render("mysql_replication", "mysql_replication__volumes", dict(BACKUP, mysql_replication_namespace="shop"))
    assert volumes[-1] == {"claim": "mysql-backup", "namespace": "shop", "directory": "backups/mysql", "size": "20Gi",
                           "storage_class": "kubess-nfs", "access_modes": ["ReadWriteMany"], "owner": 999,
                           "group": 999, "mode": "0750"}
    assert render("mysql_replication", "mysql_replication__volumes", RESTORE)[-1]["claim"] == "mysql-backup"


@pytest.mark.parametrize("var, value, fragment", [
    ("mysql_replication_flavor", "mysql", "mysql_replication_backup is for the mariadb flavour"),
    ("mysql_replication_backup_keep", "0", "mysql_replication_backup_keep "),
    ("mysql_replication_backup_timeout", "10", "mysql_replication_backup_timeout "),
    ("mysql_replication_backup_schedule", "nightly", "mysql_replication_backup_schedule must be empty or a cron"),
    ("mysql_replication_backup_time_zone", "Not:a:zone", "mysql_replication_backup_time_zone must be an IANA"),
    ("mysql_replication_backup_directory", "../elsewhere", "mysql_replication_backup_directory must be a relative"),
    ("mysql_replication_backup_size", "lots", "mysql_replication_backup_size "),
    ("mysql_replication_name", "m" * 46, "mysql_replication_name must be at most 45 characters with"),
    ("mysql_replication_backup_timeout", "86401", "mysql_replication_backup_timeout must be a whole number"),
    ("mysql_replication_replicas", "1", "mysql_replication_backup_schedule would take backups of ordinal 0, the only pod"),
])
def test_bad_backup_input_is_refused_naming_the_variable(var, value, fragment):
    problems = render("mysql_replication", "mysql_replication__input_problems", dict(BACKUP, **{var: value}))
    assert any(p.startswith(fragment) for p in problems), problems


def test_a_one_pod_set_may_take_backups_on_demand_only():
    assert render("mysql_replication", "mysql_replication__input_problems",
                  dict(BACKUP, mysql_replication_replicas="1", mysql_replication_backup_schedule="")) == []


def test_good_backup_and_restore_input_has_no_problem():
    assert render("mysql_replication", "mysql_replication__input_problems",
                  dict(BACKUP, mysql_replication_backup_schedule="@daily")) == []
    assert render("mysql_replication", "mysql_replication__input_problems", RESTORE) == []


@pytest.mark.parametrize("extra", [
    {"mysql_replication_restore_from": "../../etc/passwd"},
    {"mysql_replication_restore_from": "shop_pxc-20261203T023000Z.xbstream.gz"},
    {"mysql_replication_flavor": "mysql"},
])
def test_bad_restore_input_is_refused_naming_the_variable(extra):
    problems = render("mysql_replication", "mysql_replication__input_problems", dict(RESTORE, **extra))
    assert any(p.startswith("mysql_replication_restore_from must be the file name of a backup") for p in problems), \
        problems


def test_restore_makes_ordinal_0s_claim_then_one_job_as_ordinal_0_on_it():
    (claim,) = render("mysql_replication", "mysql_replication__restore_claims", RESTORE)
    assert claim["metadata"] == {"name": "data-mysql-0", "namespace": "restored",
                                 "labels": {"app.kubernetes.io/name": "mysql", "app.kubernetes.io/instance": "mysql"}}
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                             "storageClassName": "kubess-nfs"}
    job = render("mysql_replication", "mysql_replication__restore_job", RESTORE)
    assert job["metadata"]["name"] == "mysql-restore"
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "restore"
    spec = pod_spec(job)
    assert spec["hostname"] == "mysql-0" and spec["securityContext"]["runAsUser"] == 999
    volumes = {v["name"]: v.get("persistentVolumeClaim") for v in spec["volumes"]}
    assert volumes["data"] == {"claimName": "data-mysql-0"}
    assert volumes["backup"] == {"claimName": "mysql-backup", "readOnly": True}
    (container,) = spec["containers"]
    assert container["command"] == ["bash", "-c", SCRIPT, "mysql-replication.sh", "restore"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"/var/lib/mysql", "/backup", "/etc/mysql/conf.d", "/var/run/mysqld", "/tmp"}
    env = env_of(container)
    assert (env["HOSTNAME"], env["KUBESS_RESTORE_FROM"]) == ("mysql-0", RESTORE["mysql_replication_restore_from"])
    for key in ("root-password", "replication-password", "clone-password", "app-password"):
        assert {"secretKeyRef": {"name": "mysql-credentials", "key": key}} in env.values(), key
    assert job["spec"]["backoffLimit"] == 0
    assert job["metadata"]["annotations"] == {"kubess.io/restored-from": RESTORE["mysql_replication_restore_from"]}


def test_a_restored_set_names_its_backup_and_an_unrestored_one_names_none():
    def annotations(extra):
        (made,) = [m for m in render("mysql_replication", "mysql_replication__manifests", extra,
                                     facts={"mysql_replication__existing": {}})
                   if m["kind"] == "StatefulSet"]
        return made["metadata"].get("annotations", {})
    assert annotations(RESTORE)["kubess.io/restored-from"] == RESTORE["mysql_replication_restore_from"]
    assert "kubess.io/restored-from" not in annotations({"mysql_replication_flavor": "mariadb"})


def restore_rule(existing: list[dict]) -> dict:
    rules = render("mysql_replication", "mysql_replication__cluster_rules", RESTORE,
                   facts={"mysql_replication__cluster": {"statefulset": existing, "nodes": [], "namespace": [{}]},
                          "mysql_replication__secrets": {"differing": []}})
    (rule,) = [r for r in rules if r["var"] == "mysql_replication_restore_from"]
    return rule


def test_a_restore_over_a_running_set_is_refused_unless_that_set_was_made_from_the_same_backup():
    assert restore_rule([])["ok"]
    rule = restore_rule([{"metadata": {"name": "mysql"}}])
    assert not rule["ok"] and "the StatefulSet mysql exists in restored (not made from a backup)" in rule["msg"]
    made_from = {"metadata": {"name": "mysql", "annotations": {
        "kubess.io/restored-from": RESTORE["mysql_replication_restore_from"]}}}
    assert restore_rule([made_from])["ok"], "the same restore again restores nothing and is not refused"
    other = {"metadata": {"name": "mysql", "annotations": {"kubess.io/restored-from": "shop-mysql-2020.mbstream.gz"}}}
    rule = restore_rule([other])
    assert not rule["ok"] and "(made from shop-mysql-2020.mbstream.gz)" in rule["msg"]


def test_teardown_removes_the_cronjob_and_jobs_by_their_labels():
    entries = {e["kind"]: e for e in render("mysql_replication", "mysql_replication__teardown",
                                            {"mysql_replication_state": "absent"})}
    for kind in ("CronJob", "Job"):
        assert sorted(entries[kind]["selectors"]) == [
            "app.kubernetes.io/instance=mysql", "app.kubernetes.io/managed-by=kubess.stateful",
            "app.kubernetes.io/name=mysql-backup"]


def test_a_cronjob_switched_off_is_removed_only_when_the_set_has_it():
    have = {"mysql_replication__cluster": {"backup_cronjob": [{"kind": "CronJob"}]}}
    assert render("mysql_replication", "mysql_replication__switched_off", {}, facts=have) == [
        {"api_version": "batch/v1", "kind": "CronJob", "name": "mysql-backup"}]
    assert render("mysql_replication", "mysql_replication__switched_off", BACKUP, facts=have) == []
    assert render("mysql_replication", "mysql_replication__switched_off", {},
                  facts={"mysql_replication__cluster": {"backup_cronjob": []}}) == []
