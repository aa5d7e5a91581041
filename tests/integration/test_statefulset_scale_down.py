"""kubess.stateful.statefulset_scale_down on the local cluster, run through ansible-playbook as a role runs it.

A finalizer on one pod keeps it Terminating for as long as the test wants: the module must not touch a lower
ordinal while it is there, and must fail at its deadline naming it.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from test_statefulset_wait import ModuleRun, _audit_lines, _events_in_window, get_pod, sts_manifest, wait_pods_ready

MODULE = "kubess.stateful.statefulset_scale_down"
HOLD = "kubess.io/test-hold"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


@pytest.fixture
def namespace(namespace, cluster):
    """conftest's fresh namespace; pods this test held with a finalizer are released before it is deleted."""
    yield namespace
    for pod in json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]:
        if HOLD in pod["metadata"].get("finalizers", []):
            release(cluster, namespace, pod["metadata"]["name"])


def release(cluster, namespace, pod):
    cluster.kubectl("patch", "pod", pod, "-n", namespace, "--type=json",
                    "-p", json.dumps([{"op": "remove", "path": "/metadata/finalizers"}]), check=False)


def hold(cluster, namespace, pod):
    cluster.kubectl("patch", "pod", pod, "-n", namespace, "--type=merge",
                    "-p", json.dumps({"metadata": {"finalizers": [HOLD]}}))


def module_requests(cluster, namespace, verb, pod, since):
    """When the module (a Python client) sent ``verb`` on pod ``pod`` (by name or field selector), after ``since``."""
    times = []
    stage = "ResponseStarted" if verb == "watch" else "ResponseComplete"
    for ev in _audit_lines(cluster):
        ref = ev.get("objectRef") or {}
        if ev.get("stage") != stage or ref.get("namespace") != namespace:
            continue
        received = datetime.fromisoformat(ev["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
        if (received >= since and ev["verb"] == verb and ref.get("resource") == "pods" and "python" in ev.get("userAgent", "").lower()
                and (ref.get("name") == pod or "metadata.name%3D" + pod in ev.get("requestURI", ""))):
            times.append(received)
    return times


def ready_set(cluster, namespace, name, replicas=3, policy="Parallel"):
    cluster.apply(sts_manifest(name, replicas=replicas, policy=policy), namespace)
    wait_pods_ready(cluster, namespace, [f"{name}-{i}" for i in range(replicas)])


def spec_replicas(cluster, namespace, name):
    return cluster.get_json("statefulset", name, "-n", namespace)["spec"]["replicas"]


@pytest.mark.parametrize("policy", ["Parallel", "OrderedReady"])
def test_one_ordinal_at_a_time_the_highest_first(cluster, namespace, tmp_path, policy):
    ready_set(cluster, namespace, "db", policy=policy)
    hold(cluster, namespace, "db-1")
    start = time.time()
    run = ModuleRun(cluster, tmp_path, {"name": "db", "namespace": namespace, "timeout": 120}, module=MODULE)

    # db-2 is gone and db-1 is Terminating (held): the set is at 1 and db-0 was left alone.
    cluster.wait_for(lambda: (get_pod(cluster, namespace, "db-1") or {}).get("metadata", {}).get("deletionTimestamp")
                     and get_pod(cluster, namespace, "db-2") is None, timeout=60, what="db-2 gone, db-1 terminating")
    assert spec_replicas(cluster, namespace, "db") == 1
    # The module watches db-1 by name, and has not asked for db-0 to go.
    cluster.wait_for(lambda: module_requests(cluster, namespace, "watch", "db-1", start), timeout=30,
                     what="the module watching db-1")
    assert not module_requests(cluster, namespace, "delete", "db-0", start)
    assert "deletionTimestamp" not in get_pod(cluster, namespace, "db-0")["metadata"]
    assert run.running()

    released = time.time()
    release(cluster, namespace, "db-1")
    res = run.result()
    assert res["_rc"] == 0, res.get("msg")
    assert res["changed"] is True
    assert (res["replicas_before"], res["replicas"]) == (3, 0)
    assert [s["ordinal"] for s in res["stopped"]] == [2, 1, 0]
    assert spec_replicas(cluster, namespace, "db") == 0
    assert json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"] == []
    # db-0 was asked to go only after db-1 was released.
    cluster.wait_for(lambda: module_requests(cluster, namespace, "delete", "db-0", start), timeout=30,
                     what="the module's deletion of db-0 in the audit log")
    assert all(t >= released for t in module_requests(cluster, namespace, "delete", "db-0", start))


def test_a_pod_that_does_not_go_fails_at_the_deadline_naming_it(cluster, namespace, tmp_path):
    ready_set(cluster, namespace, "db")
    hold(cluster, namespace, "db-2")
    res = ModuleRun(cluster, tmp_path, {"name": "db", "namespace": namespace, "timeout": 8}, module=MODULE).result()
    assert res["_rc"] != 0
    assert (res["ordinal"], res["pod"]) == (2, "db-2")
    assert "db-2 (ordinal 2)" in res["msg"] and HOLD in res["msg"] and "deletion requested at" in res["msg"]
    assert spec_replicas(cluster, namespace, "db") == 2
    assert "deletionTimestamp" not in get_pod(cluster, namespace, "db-1")["metadata"]


def test_down_to_a_number_leaves_the_lower_ordinals(cluster, namespace, tmp_path):
    ready_set(cluster, namespace, "db")
    res = ModuleRun(cluster, tmp_path, {"name": "db", "namespace": namespace, "replicas": 2}, module=MODULE).result()
    assert res["_rc"] == 0, res.get("msg")
    assert [s["ordinal"] for s in res["stopped"]] == [2]
    assert get_pod(cluster, namespace, "db-2") is None
    assert {get_pod(cluster, namespace, f"db-{i}")["metadata"]["uid"] for i in (0, 1)}  # still there
    again = ModuleRun(cluster, tmp_path, {"name": "db", "namespace": namespace, "replicas": 2}, module=MODULE).result()
    assert again["_rc"] == 0 and again["changed"] is False and again["stopped"] == []


def test_check_mode_names_the_ordinals_and_writes_nothing(cluster, namespace, tmp_path):
    ready_set(cluster, namespace, "db")
    start = time.time()
    res = ModuleRun(cluster, tmp_path, {"name": "db", "namespace": namespace}, check_mode=True, module=MODULE).result()
    end = time.time()
    assert res["_rc"] == 0, res.get("msg")
    assert res["changed"] is True and [s["ordinal"] for s in res["stopped"]] == [2, 1, 0]
    assert spec_replicas(cluster, namespace, "db") == 3
    cluster.wait_for(lambda: any("python" in e.get("userAgent", "").lower()
                                 for e in _events_in_window(cluster, namespace, start, end)),
                     timeout=30, what="the module's read in the audit log")
    writes = [e for e in _events_in_window(cluster, namespace, start, end)
              if e["verb"] in WRITE_VERBS and "python" in e.get("userAgent", "").lower()]
    assert writes == []


def test_a_set_that_does_not_exist_is_reported(cluster, namespace, tmp_path):
    res = ModuleRun(cluster, tmp_path, {"name": "nothing", "namespace": namespace}, module=MODULE).result()
    assert res["_rc"] == 0, res.get("msg")
    assert (res["exists"], res["changed"], res["stopped"]) == (False, False, [])
