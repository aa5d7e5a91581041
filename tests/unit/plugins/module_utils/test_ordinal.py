"""Readiness predicates of StatefulSet ordinals, on the YAML fixtures in fixtures/."""

from __future__ import annotations


import pytest

from ansible_collections.kubess.stateful.tests.unit.plugins.module_utils.yaml_fixtures import fx
from ansible_collections.kubess.stateful.plugins.module_utils import _ordinal as o


NEW = "web-7d9c8b6f5d"
OLD = "web-5f6d4c7b8a"


@pytest.mark.parametrize(
    "key, set_name, expected",
    [
        ("ready_rev_new", "web", 2),  # name and label agree
        ("ready_rev_old", "web", 0),
        ("no_index_label", "web", 7),  # older clusters: no pod-index label, the name decides
        ("label_disagrees", "web", None),  # web-4 labelled 5: not trusted
        ("leading_zero", "web", None),  # the controller never writes 01
        ("other_set_pod", "web", None),  # controlled by web-canary
        ("nested_set_name", "web", None),  # web-db-0 belongs to web-db, not to web
        ("nested_set_name", "web-db", 0),
        ("label_only_owned", "web", 6),  # the label counts when the set owns the pod
        ("label_only_unowned", "web", None),
        ("ready_rev_new", "we", None),
    ],
)
def test_pod_ordinal(key, set_name, expected):
    assert o.pod_ordinal(fx("pods", key), set_name) == expected


@pytest.mark.parametrize(
    "key, expected",
    [
        ("ready_rev_new", True),
        ("ready_rev_old", True),
        ("running_not_ready", False),
        ("deleting_ready", False),  # Ready but going away
        ("created_pending", False),
        ("image_pull_backoff", False),
        ("failed_phase", False),
    ],
)
def test_pod_ready(key, expected):
    assert o.pod_ready(fx("pods", key)) is expected


@pytest.mark.parametrize(
    "key, update_revision, partition, expected",
    [
        ("ready_rev_new", None, 0, True),
        ("ready_rev_new", NEW, 0, True),
        ("ready_rev_old", NEW, 0, False),  # Ready, but still the old template
        ("ready_rev_old", NEW, 1, True),  # ordinal 0 < partition 1: keeps the old revision
        ("ready_rev_new", OLD, 2, False),  # ordinal 2 >= partition 2 must run the update revision
        ("ready_rev_new", OLD, 3, True),
        ("running_not_ready", NEW, 0, False),  # right revision, not Ready
        ("running_not_ready", None, 5, False),  # partition never makes a pod Ready
    ],
)
def test_ordinal_ready_revision_and_partition(key, update_revision, partition, expected):
    assert o.ordinal_ready(fx("pods", key), update_revision, partition) is expected


def test_ordinal_ready_missing_pod():
    assert o.ordinal_ready(None) is False


def test_ordinal_ready_partition_counts_from_start_ordinal():
    pod = fx("pods", "ready_rev_old")  # ordinal 0, old revision
    pod["metadata"]["name"] = "web-5"
    pod["metadata"]["labels"][o.POD_INDEX_LABEL] = "5"
    # The controller compares the partition with ordinal - start: index 0 < 1 keeps the old revision ...
    assert o.ordinal_ready(pod, NEW, partition=1, start=5) is True
    # ... but without the start offset, ordinal 5 would have to be updated.
    assert o.ordinal_ready(pod, NEW, partition=1, start=0) is False


def _pods(*specs):
    """{ordinal: pod} from (fixture key, ordinal, revision) triples."""
    out = {}
    for key, ordinal, revision in specs:
        pod = fx("pods", key)
        pod["metadata"]["name"] = f"web-{ordinal}"
        labels = pod["metadata"].setdefault("labels", {})
        labels[o.POD_INDEX_LABEL] = str(ordinal)
        labels[o.REVISION_LABEL] = revision
        out[ordinal] = pod
    return out


@pytest.mark.parametrize(
    "pods, replicas, update_revision, partition, expected",
    [
        (_pods(("ready_rev_new", 0, NEW), ("ready_rev_new", 1, NEW), ("ready_rev_new", 2, NEW)), 3, NEW, 0, None),
        (_pods(("ready_rev_new", 0, NEW), ("ready_rev_new", 1, NEW)), 3, NEW, 0, 2),  # ordinal 2 not created yet
        (_pods(("ready_rev_new", 0, NEW), ("running_not_ready", 1, NEW), ("ready_rev_new", 2, NEW)), 3, NEW, 0, 1),
        (_pods(("ready_rev_new", 0, OLD), ("ready_rev_new", 1, NEW)), 2, NEW, 0, 0),  # 0 not updated yet
        (_pods(("ready_rev_new", 0, OLD), ("ready_rev_new", 1, NEW)), 2, NEW, 1, None),  # partition 1 spares 0
        (_pods(("ready_rev_new", 0, OLD), ("ready_rev_new", 1, OLD)), 2, NEW, 1, 1),  # ... but not 1
        (_pods(("ready_rev_new", 0, OLD)), 1, None, 0, None),  # no revision asked for
        (_pods(("ready_rev_new", 0, NEW), ("running_not_ready", 3, NEW)), 1, NEW, 0, None),  # 3 is beyond replicas
        ({}, 0, NEW, 0, None),  # nothing to wait for
        ({}, 2, None, 0, 0),
    ],
)
def test_first_unready_ordinal(pods, replicas, update_revision, partition, expected):
    assert o.first_unready_ordinal(pods, replicas, update_revision, partition) == expected
    unready = o.unready_ordinals(pods, replicas, update_revision, partition)
    assert (unready[0] if unready else None) == expected


def test_first_unready_ordinal_with_start():
    pods = _pods(("ready_rev_new", 5, NEW), ("running_not_ready", 6, NEW))
    assert o.first_unready_ordinal(pods, 2, NEW, 0, start=5) == 6
    assert o.first_unready_ordinal(pods, 1, NEW, 0, start=5) is None
    assert o.unready_ordinals(pods, 3, NEW, 0, start=5) == [6, 7]


def test_pods_by_ordinal_skips_foreign_pods():
    pods = [fx("pods", k) for k in ("ready_rev_old", "running_not_ready", "other_set_pod", "nested_set_name")]
    assert sorted(o.pods_by_ordinal(pods, "web")) == [0, 1]


@pytest.mark.parametrize(
    "key, expected",
    [
        (
            "rolling_partitioned",
            dict(replicas=3, start=0, update_revision=NEW, partition=2, update_strategy="RollingUpdate",
                 policy="OrderedReady", selector="app=web,tier=db", observed=True),
        ),
        (
            "parallel_start_ordinal",
            dict(replicas=2, start=5, update_revision=NEW, partition=0, update_strategy="RollingUpdate", policy="Parallel",
                 selector="app=web,tier in (db,cache),!canary,zone,track notin (beta)", observed=True),
        ),
        (
            "on_delete",  # the controller replaces no pod by itself: no revision to wait for
            dict(replicas=3, start=0, update_revision=None, partition=0, update_strategy="OnDelete",
                 policy="OrderedReady", selector="app=web", observed=True),
        ),
        (
            "not_observed",  # spec.replicas defaults to 1; the status still describes generation 4
            dict(replicas=1, start=0, update_revision=OLD, partition=0, update_strategy="RollingUpdate",
                 policy="OrderedReady", selector="app=web", observed=False),
        ),
        (
            "fresh_no_status",
            dict(replicas=0, start=0, update_revision=None, partition=0, update_strategy="RollingUpdate",
                 policy="OrderedReady", selector="app=web", observed=False),
        ),
    ],
)
def test_wait_target(key, expected):
    assert o.wait_target(fx("statefulsets", key)) == expected


def test_wait_target_overrides():
    sts = fx("statefulsets", "rolling_partitioned")
    target = o.wait_target(sts, replicas=5, wait_for_update=False)
    assert target["replicas"] == 5
    assert target["update_revision"] is None


def test_label_selector_rejects_unknown_operator():
    with pytest.raises(ValueError, match="Gt"):
        o.label_selector({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})


@pytest.mark.parametrize(
    "pod_key, pvc_keys, event_keys, reason, message_parts",
    [
        ("image_pull_backoff", [], [], "ImagePullBackOff", ["container app", "registry.example/web:does-not-exist"]),
        ("crash_loop", [], [], "CrashLoopBackOff", ["container app", "restarts: 5"]),
        ("init_crash_loop", [], [], "CrashLoopBackOff", ["container init-config"]),
        ("create_config_error", [], [], "CreateContainerConfigError", ['secret "web-credentials" not found']),
        ("failed_phase", [], [], "Failed", ["low on resource: memory", "OOMKilled", "exit code 137"]),
        ("unschedulable_node_selector", [], [], "Unschedulable", ["didn't match Pod's node affinity/selector"]),
        (
            "unschedulable_unbound_pvc",
            ["pending_no_class"],
            ["failed_binding"],
            "PersistentVolumeClaimPending",
            ["data-web-0", "FailedBinding", "no persistent volumes available"],
        ),
        (
            "unschedulable_unbound_pvc",
            ["pending_missing_class"],
            ["class_not_found"],
            "PersistentVolumeClaimPending",
            ["'fast-nvme'", 'storageclass.storage.k8s.io "fast-nvme" not found'],
        ),
        (
            "unschedulable_unbound_pvc",
            ["pending_no_plugin"],
            ["no_plugin"],
            "PersistentVolumeClaimPending",
            ["'local-manual'", "no volume plugin matched name: kubernetes.io/no-provisioner"],
        ),
        ("unschedulable_unbound_pvc", ["lost"], [], "PersistentVolumeClaimLost", ["data-web-0 is Lost"]),
        ("unschedulable_foreign_claim_not_found", [], [], "Unschedulable", ['"shared-cache" not found']),
    ],
)
def test_stuck_reason_stuck(pod_key, pvc_keys, event_keys, reason, message_parts):
    got = o.stuck_reason(
        fx("pods", pod_key), [fx("pvcs", k) for k in pvc_keys], [fx("events", k) for k in event_keys]
    )
    assert got is not None
    assert got[0] == reason
    for part in message_parts:
        assert part in got[1]
    assert reason in o.HINTS


@pytest.mark.parametrize(
    "pod_key, pvc_keys, event_keys",
    [
        ("ready_rev_new", [], []),
        ("running_not_ready", [], []),  # readiness probe not passing yet: may still come
        ("created_pending", [], []),
        ("container_creating", [], []),
        ("deleting_ready", [], []),
        ("unschedulable_unbound_pvc", [], []),  # claims not known yet: no verdict
        ("unschedulable_unbound_pvc", ["pending_provisioning"], ["external_provisioning"]),  # a provisioner works on it
        ("unschedulable_unbound_pvc", ["pending_provisioning"], ["provisioner_error"]),  # it retries: may still work
        ("unschedulable_unbound_pvc", ["pending_no_class"], []),  # no event yet
        ("unschedulable_unbound_pvc", ["pending_no_class"], ["failed_binding_old_claim"]),  # about an older claim
        ("unschedulable_unbound_pvc", ["bound"], ["failed_binding"]),  # bound since
        ("unschedulable_unbound_pvc", ["other_claim_pending"], ["failed_binding"]),  # not this pod's claim
        ("unschedulable_claim_not_seen_yet", [], []),  # the scheduler has not seen the set's new claim yet
    ],
)
def test_stuck_reason_not_stuck(pod_key, pvc_keys, event_keys):
    pvcs = [fx("pvcs", k) for k in pvc_keys]
    events = [fx("events", k) for k in event_keys]
    assert o.stuck_reason(fx("pods", pod_key), pvcs, events) is None


def test_stuck_reason_ignores_a_pod_being_deleted():
    pod = fx("pods", "image_pull_backoff")
    pod["metadata"]["deletionTimestamp"] = "2025-03-01T10:05:00Z"
    assert o.stuck_reason(pod) is None


def test_pod_claim_names():
    assert o.pod_claim_names(fx("pods", "unschedulable_unbound_pvc")) == ["data-web-0"]
    assert o.pod_claim_names(fx("pods", "ready_rev_new")) == []


@pytest.mark.parametrize(
    "key, expected", [("unschedulable_unbound_pvc", True), ("created_pending", False), ("ready_rev_new", False)]
)
def test_pod_unscheduled(key, expected):
    assert o.pod_unscheduled(fx("pods", key)) is expected


def test_last_events_newest_last_and_limited():
    events = [fx("events", k) for k in ("pod_backoff", "pod_scheduled", "pod_failed", "pod_pulling")]
    lines = o.last_events(events, limit=3)
    assert len(lines) == 3
    assert [line.split()[2].rstrip(":") for line in lines] == ["Failed", "Pulling", "BackOff"]
    assert lines[-1].endswith("(x7)")
    assert o.last_events(events, limit=0) == []


def test_events_for_filters_kind_name_and_uid():
    events = [fx("events", k) for k in ("failed_binding", "failed_binding_old_claim", "pod_scheduled")]
    got = o.events_for(events, "PersistentVolumeClaim", "data-web-0", uid="9c0ffee0-0000-4000-8000-000000000000")
    assert [e["metadata"]["name"] for e in got] == ["data-web-0.182a1"]
    assert len(o.events_for(events, "PersistentVolumeClaim", "data-web-0")) == 2
    assert o.events_for(events, "Pod", "web-9") == []


@pytest.mark.parametrize(
    "key, parts",
    [
        ("image_pull_backoff", ["phase Pending", "node kubess-node-2", "Ready=False (ContainersNotReady",
                                "app waiting (ImagePullBackOff: Back-off pulling image"]),
        ("unschedulable_node_selector", ["not scheduled", "PodScheduled=False (Unschedulable 0/3 nodes are available"]),
        ("crash_loop", ["restarts=5"]),
        ("deleting_ready", ["being deleted", "app running, ready=True"]),
        ("failed_phase", ["phase Failed", "terminated (OOMKilled, exit code 137)"]),
    ],
)
def test_describe_pod(key, parts):
    text = o.describe_pod(fx("pods", key))
    for part in parts:
        assert part in text


def test_describe_missing_pod():
    assert o.describe_pod(None) == "the pod does not exist"


@pytest.mark.parametrize(
    "obj, path, expected",
    [
        ({"a": {"b": [1, {"c": 2}]}}, ("a", "b", 1, "c"), 2),
        ({"a": {"b": [1]}}, ("a", "b", 3), None),
        ({"a": None}, ("a", "b"), None),
        ({"a": "x"}, ("a", "b"), None),
    ],
)
def test_dig(obj, path, expected):
    assert o.dig(obj, *path) == expected
