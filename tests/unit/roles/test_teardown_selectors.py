"""What `<role>_state: absent` deletes, as Ansible renders it from the role's own defaults and vars: every kind is
found by a non-empty label selector (delete_all with none would delete every object of the kind in the namespace)
or by name, and the claims and Secrets only with `<role>_purge`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ROLES = ("etcd", "pxc", "mysql_replication", "wordpress")


def teardown(role: str, purge: bool) -> list[dict]:
    play = [{
        "hosts": "localhost", "gather_facts": False,
        "vars_files": [str(ROOT / "roles" / role / "defaults" / "main.yml"), str(ROOT / "roles" / role / "vars" / "main.yml")],
        "tasks": [{"name": "show", "ansible.builtin.debug": {"var": f"{role}__teardown"}}],
    }]
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_NOCOLOR="1")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", f"{role}_purge={purge}", "-e", f"{role}_state=absent", "/dev/stdin"],
        input=json.dumps(play), env=env, capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return result[f"{role}__teardown"]


# As a user passes them on the command line: strings, which the role must read as booleans.
@pytest.mark.parametrize("purge", ["false", "true"])
@pytest.mark.parametrize("role", ROLES)
def test_every_kind_is_found_by_labels_or_by_name(role, purge):
    purged = purge == "true"
    entries = teardown(role, purge)
    assert entries, role
    for entry in entries:
        assert entry["selectors"] or entry.get("name"), entry
        assert all("=" in s for s in entry["selectors"]), entry
        if not entry.get("name"):
            assert any(s.startswith("app.kubernetes.io/instance=") for s in entry["selectors"]), entry
        # Only the role's own objects: managed-by, except the claims, which carry the set's selector labels only.
        if not entry.get("name") and entry["kind"] != "PersistentVolumeClaim":
            assert "app.kubernetes.io/managed-by=kubess.stateful" in entry["selectors"], entry
    kinds = {e["kind"] for e in entries}
    assert ("Secret" in kinds) == purged
    assert ("PersistentVolumeClaim" in kinds) == (purged and role != "wordpress")
    assert "PersistentVolume" not in kinds
    if role == "pxc":
        maps = {e["name"] for e in entries if e["kind"] == "ConfigMap"}
        assert maps == ({"pxc-config", "pxc-bootstrap"} if purged else {"pxc-config"})
