"""Faults on the running stack, in real containers: each part recovers by itself, without losing data."""

from __future__ import annotations

import threading
import uuid

from test_etcd import MEMBERS, endpoint
from test_wordpress import fetch, service_url


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


def test_deleting_a_wordpress_pod_under_requests(stack):
    """Requests go on while one web pod is deleted: the figure of failed requests is reported, and must stay small
    (the Service drops the pod before Apache stops gracefully)."""
    url = service_url(stack)
    victim = sorted(p["metadata"]["name"] for p in stack.pods("app.kubernetes.io/instance=wordpress"))[0]
    results = []
    stop = threading.Event()

    def requests():
        while not stop.is_set():
            status, _page = fetch(f"{url}/wp-login.php", timeout=10)
            results.append(status)

    worker = threading.Thread(target=requests, daemon=True)
    worker.start()
    try:
        stack.wait_for(lambda: len(results) >= 20, timeout=60, what="requests before the deletion")
        stack.kubectl("delete", "pod", victim, "-n", stack.namespace, "--wait=true")
        count = len(results)
        stack.wait_for(lambda: len(results) >= count + 50, timeout=120, what="requests after the deletion")
    finally:
        stop.set()
        worker.join(timeout=15)
    failed = [s for s in results if s != 200]
    print(f"\nWordPress pod {victim} deleted during {len(results)} requests: {len(failed)} failed {sorted(set(failed))}")
    assert len(failed) <= len(results) // 50, f"{len(failed)} of {len(results)} requests failed"
    stack.wait_for(lambda: stack.get("deployment", "wordpress")["status"].get("readyReplicas", 0)
                   >= stack.get("deployment", "wordpress")["spec"]["replicas"], what="every web pod Ready again")
