"""What `<role>_state: absent` deletes, as Ansible renders it from the role's own defaults and vars: every kind is
found by a non-empty label selector (delete_all with none would delete every object of the kind in the namespace)
or by name, and the claims and Secrets only with `<role>_purge`."""

from __future__ import annotations

import pytest

from ansible_collections.kubess.stateful.plugins.module_utils._delete import entry_problem
from role_vars import render

ROLES = ("etcd", "pxc", "mysql_replication", "wordpress")


def teardown(role: str, purge: str) -> list[dict]:
    return render(role, f"{role}__teardown", {f"{role}_purge": purge, f"{role}_state": "absent"})


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
    # What kubess.stateful.k8s_delete takes, or it refuses the whole list before deleting anything.
    assert [entry_problem(i, e) for i, e in enumerate(entries)] == [None] * len(entries)
    kinds = {e["kind"] for e in entries}
    assert ("Secret" in kinds) == purged
    assert ("PersistentVolumeClaim" in kinds) == (purged and role != "wordpress")
    assert "PersistentVolume" not in kinds
    if role == "pxc":
        maps = {e["name"] for e in entries if e["kind"] == "ConfigMap"}
        assert maps == ({"pxc-config", "pxc-bootstrap"} if purged else {"pxc-config"})
