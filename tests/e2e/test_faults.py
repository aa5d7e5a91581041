"""Faults on the running stack, in real containers: each part recovers by itself, without losing data."""

from __future__ import annotations

import uuid

from test_etcd import MEMBERS, endpoint


def test_deleted_etcd_member_rejoins_with_its_data(stack):
    key, value = f"/e2e/fault/{uuid.uuid4().hex}", uuid.uuid4().hex
    stack.etcdctl("etcd-0", "put", key, value, endpoints=[endpoint("etcd-0", stack)])
    before = stack.get("pod", "etcd-1")["metadata"]["uid"]
    stack.kubectl("delete", "pod", "etcd-1", "-n", stack.namespace, "--wait=true")
    stack.wait_for(lambda: stack.get("pod", "etcd-1")["metadata"]["uid"] != before and stack.ready("etcd-1"),
                   what="etcd-1 back and Ready")
    # A serializable read is answered from the member's own data, not through the leader.
    got = stack.etcdctl("etcd-1", "get", key, "--print-value-only", "--consistency=s",
                        endpoints=[endpoint("etcd-1", stack)])
    assert got.stdout.strip() == value
    members = stack.etcdctl("etcd-0", "member", "list", "-w", "json").stdout
    assert all(f'"name":"{m}"' in members.replace(" ", "") for m in MEMBERS)
