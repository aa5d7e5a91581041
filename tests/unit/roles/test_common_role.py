"""kubess.stateful.common serves the role that calls it: the shared steps (input check, backup entry point, removal)
read that role's variables and name them in their messages. No cluster: each run below stops before any Kubernetes
task, and the kubeconfig points at no file, so a run that went further would fail with another message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

BACKUP_ROLES = ("etcd", "pxc", "mysql_replication")


def run_role(role: str, tasks_from: str, extra: dict) -> subprocess.CompletedProcess:
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Run the entry point", "ansible.builtin.include_role": {
            "name": f"kubess.stateful.{role}", "tasks_from": tasks_from}}]}]
    extra = {f"{role}_kubeconfig": "/nonexistent/kubeconfig", **extra}
    with tempfile.TemporaryDirectory() as tmp:
        playbook = Path(tmp) / "play.yml"
        playbook.write_text(json.dumps(play), encoding="utf-8")
        return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,",
                               "-c", "local", "-e", json.dumps(extra), str(playbook)],
                              capture_output=True, text=True, check=False,
                              env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default"))


def failed_task_and_message(done: subprocess.CompletedProcess) -> tuple[str, str]:
    """The header of the task that failed, and the whole output (the message is wrapped across lines)."""
    assert done.returncode != 0, done.stdout
    out = done.stdout + done.stderr
    headers = [line for line in out.splitlines() if line.startswith("TASK [")]
    return headers[-1], " ".join(out.split())


@pytest.mark.parametrize("role", BACKUP_ROLES)
def test_the_backup_entry_point_refuses_without_a_backup_volume_naming_the_role_s_variable(role):
    done = run_role(role, "backup", {f"{role}_backup": False})
    task, out = failed_task_and_message(done)
    assert "Check that the cluster keeps a backup volume" in task
    assert f"{role}_backup is false: there is no backup volume to write to. Set {role}_backup: true" in out
    # The claim of this role's own name default (<name>-backup).
    claim = {"etcd": "etcd-backup", "pxc": "pxc-backup", "mysql_replication": "mysql-backup"}[role]
    assert f"makes the claim {claim} and the CronJob" in out


@pytest.mark.parametrize("role", BACKUP_ROLES)
@pytest.mark.parametrize("tasks_from, extra", [("backup", {}), ("main", {"state": "absent"})])
def test_backup_and_removal_check_the_role_s_input_first(role, tasks_from, extra):
    """A namespace no Kubernetes object can have: the shared input check refuses it, naming the role's variable,
    before any task reads or writes the cluster."""
    done = run_role(role, tasks_from, {f"{role}_namespace": "Not_A_Label", f"{role}_backup": True,
                                       **{f"{role}_{k}": v for k, v in extra.items()}})
    task, out = failed_task_and_message(done)
    assert f"Check the input of {role}" in task
    assert f"{role}_namespace must be a DNS-1123 label" in out
    assert "Not_A_Label" in out


def test_the_wordpress_removal_checks_its_input_first():
    done = run_role("wordpress", "main", {"wordpress_state": "absent", "wordpress_namespace": "Not_A_Label"})
    task, out = failed_task_and_message(done)
    assert "Check the input of wordpress" in task
    assert "wordpress_namespace must be a DNS-1123 label" in out


@pytest.mark.parametrize("role", BACKUP_ROLES + ("wordpress", "pv_provisioning"))
def test_the_preflight_checks_the_role_s_input_before_reading_the_cluster(role):
    bad = {"pv_provisioning": {"pv_provisioning_storage_class": "Not_A_Class!"}}.get(role, {f"{role}_namespace": "Not_A_Label"})
    done = run_role(role, "preflight", bad)
    task, out = failed_task_and_message(done)
    # Either the entry point's argument spec (a bad choice) or the shared rule check refuses it; never a read.
    assert "Check the input of" in task or "Validating arguments against arg spec 'preflight'" in task, task
    assert next(iter(bad)) in out
