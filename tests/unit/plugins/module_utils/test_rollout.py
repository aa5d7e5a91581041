"""The plan and the check mode of statefulset_rollout (plugins/module_utils/_rollout.py), against an API that
returns a StatefulSet and its pods; the steps themselves run against the local cluster
(tests/integration/test_statefulset_rollout.py)."""

from __future__ import annotations

import pytest

from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import ApiFailure, ModuleFailure
from ansible_collections.kubess.stateful.plugins.module_utils._rollout import Rollout

STS = "/apis/apps/v1/namespaces/db/statefulsets/etcd"


def pod(ordinal, revision, ready=True):
    return {"metadata": {"name": f"etcd-{ordinal}", "labels": {"app": "etcd", "controller-revision-hash": revision}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


class FakeApi:
    def __init__(self, revisions, partition=0, update="etcd-new", strategy="RollingUpdate", exists=True, start=0):
        self.sts = {"metadata": {"name": "etcd", "generation": 2},
                    "spec": {"replicas": len(revisions), "ordinals": {"start": start},
                             "selector": {"matchLabels": {"app": "etcd"}},
                             "updateStrategy": {"type": strategy, "rollingUpdate": {"partition": partition}}},
                    "status": {"observedGeneration": 2, "updateRevision": update}} if exists else None
        # A revision ending in "!" is a pod that is not Ready.
        self.pods = [pod(start + i, rev.rstrip("!"), ready=not rev.endswith("!"))
                     for i, rev in enumerate(revisions) if rev]
        self.sent = []

    def list(self, path, query=(), timeout=30):
        if path == STS:
            if self.sts is None:
                raise ApiFailure(404, "not found")
            return self.sts
        assert dict(query)["labelSelector"] == "app=etcd"
        return {"metadata": {"resourceVersion": "1"}, "items": self.pods}

    def send(self, *args, **kwargs):
        self.sent.append(args)
        raise AssertionError("check mode must not write")


@pytest.mark.parametrize("revisions, partition, would, changed", [
    (["etcd-old", "etcd-old", "etcd-old"], 3, [2, 1, 0], True),     # held after a new template
    (["etcd-old", "etcd-old", "etcd-new"], 2, [1, 0], True),        # stopped at 2 by an earlier run
    (["etcd-new", "etcd-new", "etcd-new"], 3, [], True),            # nothing to replace, the partition to lower
    (["etcd-new", "etcd-new", "etcd-new"], 0, [], False),           # nothing at all
    (["etcd-old", None, "etcd-new"], 0, [0], True),                 # a missing pod is the controller's to make
    (["etcd-old", "etcd-old", "etcd-new!"], 2, [2, 1, 0], True),    # stopped at 2: waited for again, not passed
    (["etcd-new", "etcd-new!", "etcd-new"], 0, [1], False),         # a member not Ready: waited for, nothing written
])
def test_check_mode_names_the_ordinals_highest_first_and_writes_nothing(revisions, partition, would, changed):
    api = FakeApi(revisions, partition=partition)
    result = Rollout(api, "etcd", "db").run(check_mode=True)
    assert [w["ordinal"] for w in result["would_roll"]] == would
    assert result["changed"] is changed and result["partition_before"] == partition
    assert api.sent == []


@pytest.mark.parametrize("check_mode", [True, False])
def test_without_wait_again_pods_not_ready_with_nothing_to_write_are_left_to_the_wait_that_follows(check_mode):
    # A set just made: its pods on the update revision, one not Ready yet, one not made yet; partition 0.
    api = FakeApi(["etcd-new", "etcd-new!", None])
    result = Rollout(api, "etcd", "db", wait_again=False).run(check_mode=check_mode)
    assert result["changed"] is False and result.get("would_roll", result.get("rolled")) == []
    assert api.sent == []
    # Something to write is rolled as before: the pod not Ready at the partition is waited for again.
    held = Rollout(FakeApi(["etcd-old", "etcd-old", "etcd-new!"], partition=2), "etcd", "db", wait_again=False)
    assert [w["ordinal"] for w in held.run(check_mode=True)["would_roll"]] == [2, 1, 0]


def test_ordinals_start_where_the_set_says():
    # The partition counts from spec.ordinals.start: 1 holds ordinal 5 and releases ordinal 6.
    result = Rollout(FakeApi(["etcd-old", "etcd-new"], partition=1, start=5), "etcd", "db").run(check_mode=True)
    assert [w["pod"] for w in result["would_roll"]] == ["etcd-5"]


def test_a_missing_set_is_reported():
    assert Rollout(FakeApi([], exists=False), "etcd", "db").run(check_mode=True)["exists"] is False


def test_on_delete_is_refused():
    with pytest.raises(ModuleFailure, match="OnDelete update strategy"):
        Rollout(FakeApi(["etcd-old"], strategy="OnDelete"), "etcd", "db").run(check_mode=True)
