"""The pxc role's backups as Ansible renders them from the role's defaults and vars (the CronJob, the on-demand Job,
the volume layout, the NetworkPolicy, the input rules, the teardown), and the backup script, run by bash against
the stand-in client and backup tool."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from role_vars import backup_pod, render  # noqa: E402 pylint: disable=wrong-import-position

ROLE = Path(__file__).resolve().parents[4] / "roles" / "pxc"
BACKUP = {"pxc_backup": "true", "pxc_flavor": "mariadb"}
STAMP = {"pxc__backup_stamp": "20261203T101500Z", "pxc__backup_epoch": "1796292900"}
MEMBER_SELECTOR = {"app.kubernetes.io/instance": "pxc"}


def pod_spec(job: dict) -> dict:
    return job["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def cronjob() -> dict:
    (made,) = render("pxc", "pxc__backup_cronjob", dict(BACKUP, pxc_replicas="5",
                                                        pxc_tolerations=[{"key": "t", "operator": "Exists"}]))
    return made


@pytest.fixture(scope="module")
def job() -> dict:
    return render("pxc", "pxc__backup_job", dict(BACKUP, pxc_name="p" * 45, pxc_backup_force="true"), facts=STAMP)


def test_the_cronjob_backs_up_the_highest_ordinal_on_its_node_from_its_volume(cronjob):
    assert cronjob["kind"] == "CronJob" and cronjob["metadata"]["name"] == "pxc-backup"
    assert cronjob["spec"]["schedule"] == "30 2 * * *" and cronjob["spec"]["timeZone"] == "Etc/UTC"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    spec = pod_spec(cronjob["spec"]["jobTemplate"])
    (term,) = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term == {"labelSelector": {"matchLabels": {"statefulset.kubernetes.io/pod-name": "pxc-4"}},
                    "topologyKey": "kubernetes.io/hostname"}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "datadir-pxc-4", "readOnly": True}
    assert volumes["backup"]["persistentVolumeClaim"] == {"claimName": "pxc-backup"}
    (store,) = spec["containers"]
    assert store["name"] == "store" and store["image"] == "mariadb:10.11.18" and store["command"] == ["bash", "-c"]
    assert store["args"] == [(ROLE / "files" / "pxc-backup.sh").read_text(encoding="utf-8").rstrip("\n")]
    assert {"name": "data", "mountPath": "/var/lib/mysql", "readOnly": True} in store["volumeMounts"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in store["env"]}
    assert env == {
        "KUBESS_BACKUP_HOST": "pxc-4.pxc.pxc.svc.cluster.local", "KUBESS_BACKUP_PORT": "3306",
        "KUBESS_BACKUP_USER": "mariabackup",
        "KUBESS_BACKUP_PASSWORD": {"secretKeyRef": {"name": "pxc-secrets", "key": "xtrabackup-password"}},
        "KUBESS_BACKUP_TOOL": "mariadb-backup", "KUBESS_CLIENT": "mariadb", "KUBESS_BACKUP_FORMAT": "mbstream",
        "KUBESS_DATADIR": "/var/lib/mysql", "KUBESS_BACKUP_DIR": "/backup", "KUBESS_SCRATCH": "/scratch",
        "KUBESS_BACKUP_PREFIX": "pxc_pxc", "KUBESS_BACKUP_NAME": "", "KUBESS_BACKUP_KEEP": "7",
        "KUBESS_BACKUP_MEMBERS": "5", "KUBESS_BACKUP_FORCE": "0", "KUBESS_IMAGE_NAME": "mariadb:10.11.18"}
    assert spec["tolerations"] == [{"key": "t", "operator": "Exists"}]


@pytest.mark.parametrize("kind", ["cronjob", "job"])
def test_backup_pods_are_restricted_never_retried_and_selected_by_nothing_of_the_members(kind, request):
    spec = backup_pod(request.getfixturevalue(kind), "galera-backup")
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 999, "runAsGroup": 999,
                                       "seccompProfile": {"type": "RuntimeDefault"}}
    assert len(spec["containers"]) == 1


def test_the_job_taken_now_is_named_within_the_label_limit_says_its_file_and_may_be_forced(job):
    assert job["metadata"]["name"] == "p" * 45 + "-backup-1796292900" and len(job["metadata"]["name"]) <= 63
    name = "pxc_" + "p" * 45 + "-20261203T101500Z.mbstream.gz"
    assert job["metadata"]["annotations"] == {"kubess.io/backup-file": name}
    env = {e["name"]: e.get("value") for e in pod_spec(job)["containers"][0]["env"]}
    assert env["KUBESS_BACKUP_NAME"] == name and env["KUBESS_BACKUP_FORCE"] == "1"


def test_the_percona_flavour_backs_up_with_xtrabackup_as_its_own_uid():
    (made,) = render("pxc", "pxc__backup_cronjob", {"pxc_backup": "true"})
    spec = pod_spec(made["spec"]["jobTemplate"])
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert (env["KUBESS_BACKUP_TOOL"], env["KUBESS_CLIENT"], env["KUBESS_BACKUP_FORMAT"]) == (
        "xtrabackup", "mysql", "xbstream")
    assert env["KUBESS_BACKUP_USER"] == "xtrabackup" and spec["securityContext"]["runAsUser"] == 1001


@pytest.mark.parametrize("extra", [{}, {"pxc_backup": "true", "pxc_backup_schedule": ""}])
def test_no_cronjob_without_backups_or_schedule(extra):
    assert render("pxc", "pxc__backup_cronjob", extra) == []


def test_the_backup_volume_is_in_the_layout_shared_by_directory():
    assert render("pxc", "pxc__volumes", {})[-1].get("claim") is None
    volumes = render("pxc", "pxc__volumes", dict(BACKUP, pxc_namespace="restored"))
    assert volumes[-1] == {"claim": "pxc-backup", "namespace": "restored", "directory": "backups/galera",
                           "size": "20Gi", "storage_class": "kubess-nfs", "access_modes": ["ReadWriteMany"],
                           "owner": 999, "group": 999, "mode": "0750"}


def test_the_network_policy_lets_the_backup_pods_reach_the_client_port_only_with_backups():
    def backup_rules(extra):
        policy = render("pxc", "lookup('ansible.builtin.template', 'networkpolicy.yaml.j2') | ansible.builtin.from_yaml",
                        extra)
        return [r for r in policy["spec"]["ingress"]
                if r["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "galera-backup",
                                                                  "app.kubernetes.io/instance": "pxc"}}}]]
    assert backup_rules(BACKUP) == [{"from": backup_rules(BACKUP)[0]["from"],
                                     "ports": [{"protocol": "TCP", "port": 3306}]}]
    assert backup_rules({}) == []


@pytest.mark.parametrize("var, value, fragment", [
    ("pxc_backup_keep", "0", "pxc_backup_keep "),
    ("pxc_backup_timeout", "10", "pxc_backup_timeout "),
    ("pxc_backup_timeout", "86401", "pxc_backup_timeout "),
    ("pxc_backup_schedule", "nightly", "pxc_backup_schedule must be empty or a cron schedule"),
    ("pxc_backup_time_zone", "Not:a:zone", "pxc_backup_time_zone must be an IANA time zone"),
    ("pxc_backup_directory", "../elsewhere", "pxc_backup_directory must be a relative path"),
    ("pxc_backup_size", "lots", "pxc_backup_size "),
    ("pxc_name", "p" * 46, "pxc_name must be at most 45 characters with pxc_backup"),
])
def test_bad_backup_input_is_refused_naming_the_variable(var, value, fragment):
    problems = render("pxc", "pxc__input_problems", dict(BACKUP, **{var: value}))
    assert any(p.startswith(fragment) for p in problems), problems


def test_good_backup_input_has_no_problem():
    assert render("pxc", "pxc__input_problems", dict(BACKUP, pxc_backup_schedule="@daily")) == []


def test_teardown_removes_the_cronjob_and_jobs_by_their_labels():
    entries = {e["kind"]: e for e in render("pxc", "pxc__teardown", {"pxc_state": "absent"})}
    for kind in ("CronJob", "Job"):
        assert sorted(entries[kind]["selectors"]) == [
            "app.kubernetes.io/instance=pxc", "app.kubernetes.io/managed-by=kubess.stateful",
            "app.kubernetes.io/name=galera-backup"]


def test_a_cronjob_switched_off_is_removed_only_when_the_cluster_has_it():
    have = {"pxc__cluster": {"backup_cronjob": [{"kind": "CronJob"}], "network_policy": []}}
    assert render("pxc", "pxc__switched_off", {}, facts=have) == [
        {"api_version": "batch/v1", "kind": "CronJob", "name": "pxc-backup"}]
    assert render("pxc", "pxc__switched_off", BACKUP, facts=have) == []
    assert render("pxc", "pxc__switched_off", {}, facts={"pxc__cluster": {"backup_cronjob": []}}) == []


# --- The backup script, run by bash with stand-in programs on PATH ------------------------------------------------

STANDIN = """#!/bin/sh
# Stand-in {name}: records its arguments and MYSQL_PWD, answers from $STUB_DIR.
printf '%s\\n' "$*" >>"$STUB_DIR/{name}.args"
printf '%s\\n' "$MYSQL_PWD" >>"$STUB_DIR/{name}.pwd"
{body}
"""
CLIENT = """[ -f "$STUB_DIR/refuse" ] && { echo "ERROR 1045 (28000): Access denied" >&2; exit 1; }
cat "$STUB_DIR/status"
"""
TOOL = """[ -f "$STUB_DIR/tool-fails" ] && { echo "[00] FATAL ERROR: cannot read" >&2; exit 1; }
printf 'MBSTREAM-DATA'
echo "[00] completed OK!" >&2
"""
HEALTHY = "wsrep_local_state_comment\tSynced\nwsrep_cluster_status\tPrimary\nwsrep_cluster_size\t3\n"


def run_backup(tmp_path: Path, status: str = HEALTHY, **env: str) -> subprocess.CompletedProcess:
    bin_dir, stub, backup, scratch = (tmp_path / d for d in ("bin", "stub", "backup", "scratch"))
    for directory in (bin_dir, stub, backup, scratch):
        directory.mkdir(exist_ok=True)
    for name, body in (("mariadb", CLIENT), ("mariadb-backup", TOOL)):
        path = bin_dir / name
        path.write_text(STANDIN.format(name=name, body=body), encoding="utf-8")
        path.chmod(0o755)
    (stub / "status").write_text(status, encoding="utf-8")
    base = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_DIR": str(stub), "KUBESS_BACKUP_HOST": "pxc-2.pxc",
            "KUBESS_BACKUP_USER": "mariabackup", "KUBESS_BACKUP_PASSWORD": "s3cret-backup-pw",
            "KUBESS_BACKUP_DIR": str(backup), "KUBESS_SCRATCH": str(scratch), "KUBESS_BACKUP_PREFIX": "ns-eu_pxc",
            "KUBESS_BACKUP_KEEP": "2", "KUBESS_BACKUP_MEMBERS": "3", "KUBESS_IMAGE_NAME": "mariadb:test"}
    return subprocess.run(["bash", "-c", (ROLE / "files" / "pxc-backup.sh").read_text(encoding="utf-8")],
                          env=dict(base, **env), capture_output=True, text=True, check=False)


def stored(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "backup").iterdir())


def test_the_script_streams_gzips_and_keeps_the_newest_of_this_cluster_only(tmp_path):
    backup = tmp_path / "backup"
    backup.mkdir()
    for name in ("ns-eu_pxc-20261201T000000Z.mbstream.gz", "ns-eu_pxc-20261202T000000Z.mbstream.gz",
                 "ns_eu-pxc-20260101T000000Z.mbstream.gz", "ns-eu_pxc-notes.txt"):
        (backup / name).write_text("old", encoding="utf-8")
    result = run_backup(tmp_path, KUBESS_BACKUP_NAME="ns-eu_pxc-20261203T101500Z.mbstream.gz")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["stored ns-eu_pxc-20261203T101500Z.mbstream.gz",
                                          "deleted ns-eu_pxc-20261201T000000Z.mbstream.gz"]
    assert stored(tmp_path) == ["ns-eu_pxc-20261202T000000Z.mbstream.gz", "ns-eu_pxc-20261203T101500Z.mbstream.gz",
                                "ns-eu_pxc-notes.txt", "ns_eu-pxc-20260101T000000Z.mbstream.gz"]
    assert subprocess.run(["gzip", "-dc", str(backup / "ns-eu_pxc-20261203T101500Z.mbstream.gz")], capture_output=True,
                          check=True).stdout == b"MBSTREAM-DATA"
    args = (tmp_path / "stub" / "mariadb-backup.args").read_text(encoding="utf-8").split()
    assert {"--backup", "--stream=mbstream", "--galera-info", "--datadir=/var/lib/mysql", "--host=pxc-2.pxc",
            "--port=3306", "--user=mariabackup"} <= set(args)
    # The password only through MYSQL_PWD.
    for program in ("mariadb", "mariadb-backup"):
        assert "s3cret-backup-pw" not in (tmp_path / "stub" / f"{program}.args").read_text(encoding="utf-8")
        assert (tmp_path / "stub" / f"{program}.pwd").read_text(encoding="utf-8") == "s3cret-backup-pw\n"


def test_unfinished_backups_of_this_cluster_older_than_a_day_are_deleted(tmp_path):
    backup = tmp_path / "backup"
    backup.mkdir()
    day_old = time.time() - 86400 - 60
    parts = {".ns-eu_pxc-20261201T000000Z.mbstream.gz.part": day_old,  # a pod killed at its deadline: goes
             ".ns-eu_pxc-20261203T090000Z.mbstream.gz.part": time.time() - 3600,  # maybe still written: stays
             ".ns_eu-pxc-20261201T000000Z.mbstream.gz.part": day_old,  # another cluster's: stays
             ".ns-eu_pxc-x-20261201T000000Z.mbstream.gz.part": day_old}  # the cluster pxc-x's: stays
    for name, mtime in parts.items():
        (backup / name).write_text("cut", encoding="utf-8")
        os.utime(backup / name, (mtime, mtime))
    result = run_backup(tmp_path, KUBESS_BACKUP_NAME="ns-eu_pxc-20261203T101500Z.mbstream.gz")
    assert result.returncode == 0, result.stderr
    assert "deleted .ns-eu_pxc-20261201T000000Z.mbstream.gz.part, left by an earlier backup pod" in result.stderr
    assert stored(tmp_path) == [".ns-eu_pxc-20261203T090000Z.mbstream.gz.part",
                                ".ns-eu_pxc-x-20261201T000000Z.mbstream.gz.part",
                                ".ns_eu-pxc-20261201T000000Z.mbstream.gz.part", "ns-eu_pxc-20261203T101500Z.mbstream.gz"]


def test_archived_binary_logs_no_kept_backup_needs_are_pruned_and_only_this_clusters(tmp_path):
    backup = tmp_path / "backup"
    for name in ("ns-eu_pxc-20261201T000000Z.mbstream.gz", "ns-eu_pxc-20261202T000000Z.mbstream.gz"):
        (backup / name).parent.mkdir(parents=True, exist_ok=True)
        (backup / name).write_text("old", encoding="utf-8")
    # The oldest backup kept (pxc_backup_keep=2) was begun on 2026-12-02 at 00:00:00 UTC.
    begun = 1796169600
    files = {
        "binlogs/ns-eu_pxc/pxc-0/20261130T000000Z/binlog.000001": begun - 86400,  # all before: goes
        "binlogs/ns-eu_pxc/pxc-0/20261130T000000Z/binlog.000002": begun - 7200,  # two hours before: goes
        "binlogs/ns-eu_pxc/pxc-0/20261130T000000Z/binlog.000003": begun - 1800,  # within the hour left for clocks: stays
        "binlogs/ns-eu_pxc/pxc-0/20261130T000000Z/binlog.000004": begun + 60,  # written on after: stays
        "binlogs/ns-eu_pxc/pxc-2/20261201T000000Z/binlog.000007": begun - 86400,  # an older generation: goes, and it
        "binlogs/ns-eu_pxc/pxc-2/20261202T120000Z/binlog.000001": begun + 43200,
        "binlogs/ns-eu_pxc/pxc-3/20261101T000000Z/binlog.000009": begun - 86400,  # a quiet member's last file: stays
        "binlogs/ns_eu-pxc/pxc-0/20261101T000000Z/binlog.000001": begun - 86400 * 30,  # another cluster's
        "binlogs/ns-eu_pxc/pxc-0/20261130T000000Z/notes.txt": begun - 86400,  # not a binary log file
    }
    for relative, mtime in files.items():
        (backup / relative).parent.mkdir(parents=True, exist_ok=True)
        (backup / relative).write_text("events", encoding="utf-8")
        os.utime(backup / relative, (mtime, mtime))
    (backup / "binlogs/ns-eu_pxc/pxc-1/20261205T000000Z").mkdir(parents=True)  # a member's newest, still empty
    result = run_backup(tmp_path, KUBESS_BACKUP_NAME="ns-eu_pxc-20261203T101500Z.mbstream.gz")
    assert result.returncode == 0, result.stderr
    left = sorted(str(p.relative_to(backup)) for p in (backup / "binlogs").rglob("*") if p.is_file())
    assert left == ["binlogs/ns-eu_pxc/pxc-0/20261130T000000Z/binlog.000003",
                    "binlogs/ns-eu_pxc/pxc-0/20261130T000000Z/binlog.000004",
                    "binlogs/ns-eu_pxc/pxc-0/20261130T000000Z/notes.txt",
                    "binlogs/ns-eu_pxc/pxc-2/20261202T120000Z/binlog.000001",
                    "binlogs/ns-eu_pxc/pxc-3/20261101T000000Z/binlog.000009",
                    "binlogs/ns_eu-pxc/pxc-0/20261101T000000Z/binlog.000001"]
    assert not (backup / "binlogs/ns-eu_pxc/pxc-2/20261201T000000Z").exists()
    assert (backup / "binlogs/ns-eu_pxc/pxc-1/20261205T000000Z").is_dir()
    assert "pruned binlogs/ns-eu_pxc/pxc-0/20261130T000000Z/binlog.000002 (older than " \
           "ns-eu_pxc-20261202T000000Z.mbstream.gz)" in result.stderr
    # What the log of the backup says last on standard output is still the backup stored and those deleted.
    assert result.stdout.splitlines() == ["stored ns-eu_pxc-20261203T101500Z.mbstream.gz",
                                          "deleted ns-eu_pxc-20261201T000000Z.mbstream.gz"]


@pytest.mark.parametrize("status, force, fragment", [
    (HEALTHY.replace("Synced", "Donor/Desynced"), "1", "pxc-2.pxc is Donor/Desynced, not Synced"),
    (HEALTHY.replace("Primary", "non-Primary"), "1", "in a non-Primary component"),
    (HEALTHY.replace("\t3\n", "\t2\n"), "0", "the Primary component has 2 of the 3 members"),
    (HEALTHY.replace("\t3\n", "\t1\n").replace("", ""), "0", "the Primary component has 1 of the 3 members"),
])
def test_an_unhealthy_member_or_cluster_is_refused_and_nothing_is_read(tmp_path, status, force, fragment):
    result = run_backup(tmp_path, status=status, KUBESS_BACKUP_FORCE=force)
    assert result.returncode == 1 and fragment in result.stderr, result.stderr
    assert not (tmp_path / "stub" / "mariadb-backup.args").exists() and stored(tmp_path) == []


def test_force_takes_the_backup_from_a_synced_member_of_a_smaller_primary_component(tmp_path):
    result = run_backup(tmp_path, status=HEALTHY.replace("\t3\n", "\t2\n"), KUBESS_BACKUP_FORCE="1")
    assert result.returncode == 0 and "forced: the Primary component has 2 of the 3 members" in result.stderr
    (name,) = stored(tmp_path)
    assert name.startswith("ns-eu_pxc-") and name.endswith(".mbstream.gz") and len(name) == len(
        "ns-eu_pxc-20261203T101500Z.mbstream.gz")


def test_a_backup_user_that_cannot_log_in_is_named_with_the_way_to_make_it(tmp_path):
    (tmp_path / "stub").mkdir()
    (tmp_path / "stub" / "refuse").write_text("", encoding="utf-8")
    result = run_backup(tmp_path)
    assert result.returncode == 1
    assert "cannot ask pxc-2.pxc as 'mariabackup'" in result.stderr and "Access denied" in result.stderr
    assert "CREATE USER 'mariabackup'@'%'" in result.stderr and "s3cret-backup-pw" not in result.stderr


def test_a_failed_backup_tool_stores_nothing_and_says_why(tmp_path):
    (tmp_path / "stub").mkdir()
    (tmp_path / "stub" / "tool-fails").write_text("", encoding="utf-8")
    result = run_backup(tmp_path)
    assert result.returncode == 1 and "FATAL ERROR: cannot read" in result.stderr
    assert "mariadb-backup did not complete: nothing stored" in result.stderr
    assert stored(tmp_path) == []


# --- Restore --------------------------------------------------------------------------------------------------------

RESTORE = {"pxc_flavor": "mariadb", "pxc_restore_from": "kubess_pxc-20261203T023000Z.mbstream.gz",
           "pxc_namespace": "restored"}


def test_restore_makes_the_sets_claims_then_one_job_on_the_first_members_volume():
    claims = render("pxc", "pxc__restore_claims", RESTORE)
    assert [c["metadata"]["name"] for c in claims] == ["datadir-pxc-0", "datadir-pxc-1", "datadir-pxc-2"]
    for claim in claims:
        assert claim["kind"] == "PersistentVolumeClaim" and claim["metadata"]["namespace"] == "restored"
        assert claim["metadata"]["labels"] == {"app.kubernetes.io/name": "mariadb", "app.kubernetes.io/instance": "pxc"}
        assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}},
                                 "storageClassName": "kubess-nfs"}
    job = render("pxc", "pxc__restore_job", RESTORE)
    assert job["metadata"]["name"] == "pxc-restore" and job["metadata"]["labels"]["app.kubernetes.io/component"] == \
        "restore"
    spec = pod_spec(job)
    volumes = {v["name"]: v.get("persistentVolumeClaim") for v in spec["volumes"]}
    assert volumes["data"] == {"claimName": "datadir-pxc-0"}
    assert volumes["backup"] == {"claimName": "pxc-backup", "readOnly": True}
    (container,) = spec["containers"]
    assert container["args"] == [(ROLE / "files" / "pxc-restore.sh").read_text(encoding="utf-8").rstrip("\n")]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["KUBESS_RESTORE_FROM"] == RESTORE["pxc_restore_from"]
    assert (env["KUBESS_BACKUP_TOOL"], env["KUBESS_STREAM_TOOL"]) == ("mariadb-backup", "mbstream")
    assert env["KUBESS_RESTORE_TO_TIME"] == ""
    assert spec["securityContext"]["runAsUser"] == 999 and job["spec"]["backoffLimit"] == 0


def test_a_point_in_time_restore_gives_the_job_the_time_and_the_gtid_domain_the_members_log_with():
    job = render("pxc", "pxc__restore_job", dict(RESTORE, pxc_restore_to_time="2026-12-03T14:05:00Z"))
    env = {e["name"]: e["value"] for e in pod_spec(job)["containers"][0]["env"]}
    assert env["KUBESS_RESTORE_TO_TIME"] == "2026-12-03T14:05:00Z"
    binlogs = {"pxc_flavor": "mariadb", "pxc_backup": True, "pxc_backup_binlogs": True}
    cnf = render("pxc", "pxc__config_data", binlogs)["kubess.cnf"]
    assert f"wsrep_gtid_domain_id={env['KUBESS_GTID_DOMAIN']}\n" in cnf
    assert render("pxc", "pxc__input_problems", dict(RESTORE, pxc_restore_to_time="2026-12-03T14:05:00Z")) == []


def test_restore_needs_the_backup_volume_in_the_layout():
    assert render("pxc", "pxc__volumes", RESTORE)[-1]["claim"] == "pxc-backup"


@pytest.mark.parametrize("extra, fragment", [
    ({"pxc_restore_from": "../../etc/passwd"}, "pxc_restore_from must be the file name of a backup"),
    ({"pxc_restore_from": "kubess_pxc-20261203T023000Z.xbstream.gz"}, "pxc_restore_from is a backup of the percona"),
    ({"pxc_flavor": "percona"}, "pxc_restore_from is a backup of the mariadb flavour"),
    ({"pxc_restore_from": "", "pxc_restore_to_time": "2026-12-03T14:05:00Z"}, "pxc_restore_to_time needs pxc_restore_from"),
    ({"pxc_restore_to_time": "2026-12-03 14:05:00"}, "pxc_restore_to_time must be a UTC time as YYYY-MM-DDTHH:MM:SSZ"),
    ({"pxc_restore_to_time": "2026-13-03T14:05:00Z"}, "pxc_restore_to_time must be a UTC time"),
    ({"pxc_restore_to_time": "2026-12-03T24:05:00Z"}, "pxc_restore_to_time must be a UTC time"),
    ({"pxc_flavor": "percona", "pxc_restore_from": "kubess_pxc-20261203T023000Z.xbstream.gz",
      "pxc_restore_to_time": "2026-12-03T14:05:00Z"}, "pxc_restore_to_time is for the mariadb flavour"),
])
def test_bad_restore_input_is_refused_naming_the_variable(extra, fragment):
    problems = render("pxc", "pxc__input_problems", dict(RESTORE, **extra))
    assert any(p.startswith(fragment) for p in problems), problems


def restore_rule(existing: list[dict], extra: dict | None = None) -> dict:
    rules = render("pxc", "pxc__cluster_rules", dict(RESTORE, **(extra or {})),
                   facts={"pxc__cluster": {"statefulset": existing, "claims": [], "nodes": [], "namespace": [{}],
                                           "bootstrap": []}})
    (rule,) = [r for r in rules if r["var"] == "pxc_restore_from"]
    return rule


def test_a_restore_over_a_running_cluster_is_refused_unless_it_was_made_from_the_same_backup():
    assert restore_rule([])["ok"]
    rule = restore_rule([{"metadata": {"name": "pxc"}}])
    assert not rule["ok"] and "the StatefulSet pxc exists in restored (not made from a backup)" in rule["msg"]
    made_from = [{"metadata": {"name": "pxc", "annotations": {
        "kubess.io/restored-from": RESTORE["pxc_restore_from"]}}}]
    assert restore_rule(made_from)["ok"], "the same restore again restores nothing and is not refused"
    rule = restore_rule(made_from, {"pxc_restore_to_time": "2026-12-03T14:05:00Z"})
    assert not rule["ok"] and f"(made from {RESTORE['pxc_restore_from']})" in rule["msg"]
    to_time = [{"metadata": {"name": "pxc", "annotations": {
        "kubess.io/restored-from": RESTORE["pxc_restore_from"] + " to 2026-12-03T14:05:00Z"}}}]
    assert restore_rule(to_time, {"pxc_restore_to_time": "2026-12-03T14:05:00Z"})["ok"]


def test_the_restored_cluster_and_its_job_name_the_backup_and_the_time():
    job = render("pxc", "pxc__restore_job", dict(RESTORE, pxc_restore_to_time="2026-12-03T14:05:00Z"))
    source = RESTORE["pxc_restore_from"] + " to 2026-12-03T14:05:00Z"
    assert job["metadata"]["annotations"] == {"kubess.io/restored-from": source}
    (made,) = [m for m in render("pxc", "pxc__manifests", dict(RESTORE, pxc_restore_to_time="2026-12-03T14:05:00Z"),
                                 facts={"pxc__existing": {}}) if m["kind"] == "StatefulSet"]
    assert made["metadata"]["annotations"]["kubess.io/restored-from"] == source


RESTORE_STANDINS = {
    "mbstream": """#!/bin/sh
# Stand-in mbstream -x -C DIR: the stream is a tar of the backup's files.
[ "$1" = -x ] && [ "$2" = -C ] || exit 2
tar -x -C "$3"
""",
    "mariadb-backup": """#!/bin/sh
# Stand-in mariadb-backup --prepare --target-dir=DIR: marks the directory prepared.
[ -f "$STUB_DIR/prepare-fails" ] && { echo "[00] FATAL ERROR: cannot apply the log" >&2; exit 1; }
touch "${2#--target-dir=}/prepared"
""",
}


def run_restore(tmp_path: Path, files: dict[str, str]) -> subprocess.CompletedProcess:
    bin_dir, stub, backup, data, scratch = (tmp_path / d for d in ("bin", "stub", "backup", "data", "scratch"))
    for directory in (bin_dir, stub, backup, data, scratch):
        directory.mkdir(exist_ok=True)
    for name, body in RESTORE_STANDINS.items():
        (bin_dir / name).write_text(body, encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    tree = tmp_path / "tree"
    tree.mkdir()
    for name, text in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(text, encoding="utf-8")
    subprocess.run(f"tar -C {tree} -c . | gzip -c > {backup}/kubess_pxc-20261203T023000Z.mbstream.gz", shell=True,
                   check=True)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_DIR": str(stub),
           "KUBESS_RESTORE_FROM": "kubess_pxc-20261203T023000Z.mbstream.gz", "KUBESS_BACKUP_DIR": str(backup),
           "KUBESS_DATADIR": str(data), "KUBESS_SCRATCH": str(scratch), "KUBESS_IMAGE_NAME": "mariadb:test"}
    return subprocess.run(["bash", "-c", (ROLE / "files" / "pxc-restore.sh").read_text(encoding="utf-8")], env=env,
                          capture_output=True, text=True, check=False)


UUID = "0b5c3e1a-9d2f-11ef-8a4b-2f6f8e1c0d7a"
BACKED_UP = {"mysql/user.frm": "users", "kubess_e2e/rows.ibd": "rows",
             "xtrabackup_galera_info": f"{UUID}:355 0-1-360\n"}


def test_the_restore_writes_the_data_directory_at_the_backups_position_safe_to_bootstrap(tmp_path):
    result = run_restore(tmp_path, BACKED_UP)
    assert result.returncode == 0, result.stderr
    data = tmp_path / "data"
    assert result.stdout.strip() == (f"restored kubess_pxc-20261203T023000Z.mbstream.gz into {data}: cluster {UUID} "
                                     "at seqno 355, safe_to_bootstrap: 1")
    assert (data / "kubess_e2e" / "rows.ibd").read_text(encoding="utf-8") == "rows" and (data / "prepared").exists()
    assert (data / "grastate.dat").read_text(encoding="utf-8") == (
        f"# GALERA saved state\nversion: 2.1\nuuid:    {UUID}\nseqno:   355\nsafe_to_bootstrap: 1\n")
    assert not (data / ".kubess-restoring").exists()


def test_a_volume_that_holds_data_is_left_as_it_is(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "grastate.dat").write_text("kept", encoding="utf-8")
    result = run_restore(tmp_path, BACKED_UP)
    assert result.returncode == 1 and "the volume already holds data (grastate.dat): it is left as it is" in \
        result.stderr
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["grastate.dat"]


@pytest.mark.parametrize("files, fragment", [
    ({"mysql/user.frm": "users"}, "has no Galera position (xtrabackup_galera_info)"),
    ({"xtrabackup_galera_info": "garbage\n"}, "has no Galera position that can be read"),
])
def test_a_backup_without_a_position_is_not_restored(tmp_path, files, fragment):
    result = run_restore(tmp_path, files)
    assert result.returncode == 1 and fragment in result.stderr, result.stderr
    assert not (tmp_path / "data" / "grastate.dat").exists()


def test_a_failed_prepare_keeps_nothing_in_the_data_directory_but_the_work_started_over_next_time(tmp_path):
    (tmp_path / "stub").mkdir()
    (tmp_path / "stub" / "prepare-fails").write_text("", encoding="utf-8")
    result = run_restore(tmp_path, BACKED_UP)
    assert result.returncode == 1 and "cannot apply the log" in result.stderr
    assert [p.name for p in (tmp_path / "data").iterdir()] == [".kubess-restoring"]
    (tmp_path / "stub" / "prepare-fails").unlink()
    (tmp_path / "tree").rename(tmp_path / "tree-before")
    again = run_restore(tmp_path, BACKED_UP)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "data" / "grastate.dat").exists() and not (tmp_path / "data" / ".kubess-restoring").exists()


# --- the binary log archive (pxc_backup_binlogs) ------------------------------------------------------------------

BINLOGS = dict(BACKUP, pxc_backup_binlogs="true")


def statefulset(extra: dict) -> dict:
    return render("pxc", "lookup('ansible.builtin.template', 'statefulset.yaml.j2', "
                         "template_vars={'pxc__sts_replicas': 3}) | ansible.builtin.from_yaml", extra)


def test_each_member_gets_a_binlog_archive_container_on_the_backup_volume():
    spec = statefulset(dict(BINLOGS, pxc_namespace="shop"))["spec"]["template"]["spec"]
    member, archive = spec["containers"]
    assert archive["name"] == "binlog-archive" and archive["image"] == member["image"]
    assert archive["command"] == ["/bin/bash", "/opt/kubess/pxc-binlog-archive.sh"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in archive["env"]}
    assert env["KUBESS_BINLOG_DIR"] == "/backup/binlogs/shop_pxc/$(KUBESS_POD)"
    assert env["KUBESS_POD"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["KUBESS_BACKUP_PASSWORD"] == {"secretKeyRef": {"name": "pxc-secrets", "key": "xtrabackup-password"}}
    assert (env["KUBESS_BINLOG_HOST"], env["KUBESS_BINLOG_PORT"], env["KUBESS_BACKUP_USER"]) == \
        ("127.0.0.1", "3306", "mariabackup")
    # KUBESS_POD comes before the value that expands it.
    assert [e["name"] for e in archive["env"]].index("KUBESS_POD") < \
        [e["name"] for e in archive["env"]].index("KUBESS_BINLOG_DIR")
    assert {m["name"]: m["mountPath"] for m in archive["volumeMounts"]} == {"scripts": "/opt/kubess", "backup": "/backup"}
    assert {"name": "backup", "persistentVolumeClaim": {"claimName": "pxc-backup"}} in spec["volumes"]
    (scripts,) = [v for v in spec["volumes"] if v["name"] == "scripts"]
    assert "pxc-binlog-archive.sh" in [i["path"] for i in scripts["configMap"]["items"]]
    assert archive["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert archive["resources"]["limits"] == {"memory": "512Mi"}


@pytest.mark.parametrize("extra", [BACKUP, dict(BINLOGS, pxc_backup="false")], ids=["off", "no-backup"])
def test_no_binlog_archive_container_or_binary_log_without_binlogs(extra):
    spec = statefulset(extra)["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["pxc"]
    assert "backup" not in [v["name"] for v in spec["volumes"]]
    assert "log_bin" not in render("pxc", "pxc__config_data", extra)["kubess.cnf"]


def test_with_binlogs_every_member_logs_the_clusters_transactions_with_one_gtid_domain():
    cnf = render("pxc", "pxc__config_data", dict(BINLOGS, pxc_backup_binlog_expire_seconds="7200"))["kubess.cnf"]
    for line in ("log_bin=binlog", "log_slave_updates=ON", "server_id=1", "wsrep_gtid_mode=ON",
                 "wsrep_gtid_domain_id=1", "binlog_expire_logs_seconds=7200"):
        assert line in cnf.splitlines(), line


@pytest.mark.parametrize("extra, fragment", [
    (dict(BINLOGS, pxc_backup="false"), "pxc_backup_binlogs needs pxc_backup true"),
    (dict(BINLOGS, pxc_flavor="percona"), "pxc_backup_binlogs is for the mariadb flavour"),
    (dict(BINLOGS, pxc_backup_binlog_expire_seconds="60"), "pxc_backup_binlog_expire_seconds "),
])
def test_bad_binlog_input_is_refused_naming_the_variable(extra, fragment):
    problems = render("pxc", "pxc__input_problems", extra)
    assert any(p.startswith(fragment) for p in problems), problems


def test_good_binlog_input_has_no_problem():
    assert render("pxc", "pxc__input_problems", BINLOGS) == []
