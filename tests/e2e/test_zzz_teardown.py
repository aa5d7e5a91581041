"""After every other check: the stack removed with the teardown playbook, its data kept, and the site playbook run
again over the kept claims finds that data (an etcd key, Galera rows) with every member back."""

from __future__ import annotations

import uuid

from conftest import NFS_ROOT, TEARDOWN, run_site
from test_galera import CAUSAL, ensure_table, sql, wsrep_status

ETCD_MEMBERS = ["etcd-0", "etcd-1", "etcd-2"]
PXC_MEMBERS = ["pxc-0", "pxc-1", "pxc-2"]


def claims(stack) -> dict[str, tuple[str, str]]:
    """Each claim of the namespace: its uid and phase."""
    return {c["metadata"]["name"]: (c["metadata"]["uid"], c["status"].get("phase"))
            for c in stack.get("persistentvolumeclaims")["items"]}


def test_teardown_keeps_the_data_and_the_stack_comes_back_over_it(stack):
    env = dict(stack.node.cluster.env)
    env.setdefault("ANSIBLE_FORCE_COLOR", "0")
    key, value = f"/kubess-e2e/teardown/{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    stack.etcdctl("etcd-0", "put", key, value)
    marker = uuid.uuid4().hex
    ensure_table(stack, "teardown")
    sql(stack, "pxc-0", f"INSERT INTO kubess_e2e.teardown (marker) VALUES ('{marker}')")
    before = claims(stack)

    down = run_site(env, "teardown", playbook=TEARDOWN)
    print(f"\nteardown: rc={down.returncode} in {down.seconds:.1f} s, changed={down.changed}")
    assert down.returncode == 0, down.tail()
    assert stack.get("statefulsets")["items"] == [] and stack.get("deployments")["items"] == []
    running = [p["metadata"]["name"] for p in stack.get("pods")["items"]
               if p["status"].get("phase") not in ("Succeeded", "Failed")]
    assert running == [], running
    assert claims(stack) == before, "the teardown changed or deleted a claim"
    assert {phase for _uid, phase in before.values()} == {"Bound"}
    # Galera's last member to leave, ordinal 0, is marked safe to bootstrap.
    grastate = (NFS_ROOT / "datadir-pxc-0" / "grastate.dat").read_text()
    assert "safe_to_bootstrap: 1" in grastate, grastate

    again = run_site(env, "redeploy")
    print(f"site playbook over the kept claims: rc={again.returncode} in {again.seconds:.1f} s")
    assert again.returncode == 0, again.tail()
    assert claims(stack) == before
    for member in ETCD_MEMBERS:
        assert stack.etcdctl(member, "get", key, "--print-value-only").stdout.strip() == value
    for member in PXC_MEMBERS:
        assert wsrep_status(stack, member)["wsrep_local_state_comment"] == "Synced"
        rows = sql(stack, member, CAUSAL + f"SELECT marker FROM kubess_e2e.teardown WHERE marker = '{marker}'")
        assert rows == [[marker]], (member, rows)
    assert wsrep_status(stack, "pxc-0")["wsrep_cluster_size"] == "3"
