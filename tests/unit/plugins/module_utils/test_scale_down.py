"""The steps of statefulset_scale_down against an API that keeps pods in memory: what is sent, in which order."""

from __future__ import annotations

import json
import time

import pytest

from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import ApiFailure, ModuleFailure
from ansible_collections.kubess.stateful.plugins.module_utils._scale_down import ScaleDown, describe_pod, steps
from ansible_collections.kubess.stateful.plugins.modules import statefulset_scale_down as module

STS = "/apis/apps/v1/namespaces/db/statefulsets/pxc"
PODS = "/api/v1/namespaces/db/pods"


class Stream:
    """A watch on one pod by name: it ends at once for a held pod (a finalizer); otherwise it reports the pod
    DELETED, and only then does the pod leave the API."""

    def __init__(self, api, name):
        self.api, self.name = api, name

    def stream(self, amt=None, decode_content=False):
        if self.name in self.api.held or self.name not in self.api.pods:
            return
        self.api.pods.pop(self.name)
        self.api.sent.append(("GONE", self.name, None))
        yield (json.dumps({"type": "DELETED", "object": {"metadata": {"name": self.name, "resourceVersion": "9"}}})
               + "\n").encode()

    def close(self):
        pass


class FakeApi:
    """A StatefulSet and its pods. A DELETE marks the pod Terminating; the pod leaves when the watch reports it
    DELETED, unless it is held (a finalizer)."""

    def __init__(self, replicas=3, start=0, held=(), exists=True, pods=None):
        self.sts = {"spec": {"replicas": replicas, "ordinals": {"start": start},
                             "selector": {"matchLabels": {"app": "pxc"}}}} if exists else None
        count = replicas if pods is None else pods
        self.pods = {"pxc-{0}".format(i): {"metadata": {"name": "pxc-{0}".format(i)}, "status": {"phase": "Running"}}
                     for i in range(start, start + count)}
        self.held = set(held)
        self.sent = []

    def list(self, path, query=(), timeout=30):
        if path == STS:
            if self.sts is None:
                raise ApiFailure(404, "not found")
            return self.sts
        query = dict(query)
        if "labelSelector" in query:
            assert query["labelSelector"] == "app=pxc"
            return {"metadata": {"resourceVersion": "1"}, "items": list(self.pods.values())}
        name = query["fieldSelector"].split("=", 1)[1]
        items = [self.pods[name]] if name in self.pods else []
        return {"metadata": {"resourceVersion": "1"}, "items": items}

    def watch(self, path, query, resource_version, timeout_seconds, read_timeout):
        return Stream(self, dict(query)["fieldSelector"].split("=", 1)[1])

    def send(self, method, path, body=None, query=(), content_type=None, timeout=30):
        self.sent.append((method, path.rsplit("/", 1)[1], body))
        if method == "PATCH":
            self.sts["spec"]["replicas"] = body["spec"]["replicas"]
        elif method == "DELETE":
            name = path.rsplit("/", 1)[1]
            if name in self.pods:
                self.pods[name]["metadata"]["deletionTimestamp"] = "2026-12-02T10:00:00Z"
                if name in self.held:
                    self.pods[name]["metadata"]["finalizers"] = ["hold"]
        return {}


def scale(api, replicas=0, seconds=10.0):
    return ScaleDown(api, "pxc", "db", replicas, time.monotonic() + seconds)


def test_steps_go_down_one_at_a_time():
    assert steps(3, 0) == [2, 1, 0]
    assert steps(5, 3) == [4, 3]
    assert steps(2, 2) == [] and steps(1, 3) == []


def test_each_ordinal_is_patched_then_deleted_the_highest_first():
    api = FakeApi()
    res = scale(api).run()
    # Each pod is reported gone (the watch's DELETED) before the next ordinal is touched.
    assert api.sent == [
        ("PATCH", "pxc", {"spec": {"replicas": 2}}), ("DELETE", "pxc-2", None), ("GONE", "pxc-2", None),
        ("PATCH", "pxc", {"spec": {"replicas": 1}}), ("DELETE", "pxc-1", None), ("GONE", "pxc-1", None),
        ("PATCH", "pxc", {"spec": {"replicas": 0}}), ("DELETE", "pxc-0", None), ("GONE", "pxc-0", None),
    ]
    assert [s["pod"] for s in res["stopped"]] == ["pxc-2", "pxc-1", "pxc-0"]
    assert res["changed"] and (res["replicas_before"], res["replicas"]) == (3, 0)


def test_pods_left_above_the_replicas_go_first_the_highest_first():
    # A run stopped at its timeout left the set at 1 replica with pxc-1 and pxc-2 still there.
    api = FakeApi(replicas=1, pods=3)
    res = scale(api).run()
    assert api.sent == [
        ("DELETE", "pxc-2", None), ("GONE", "pxc-2", None), ("DELETE", "pxc-1", None), ("GONE", "pxc-1", None),
        ("PATCH", "pxc", {"spec": {"replicas": 0}}), ("DELETE", "pxc-0", None), ("GONE", "pxc-0", None),
    ]
    assert [s["ordinal"] for s in res["stopped"]] == [2, 1, 0] and res["changed"]
    assert [s["ordinal"] for s in scale(FakeApi(replicas=1, pods=3)).run(check_mode=True)["stopped"]] == [2, 1, 0]


def test_ordinals_start_where_the_set_says():
    api = FakeApi(replicas=2, start=5)
    res = scale(api).run()
    assert [s["ordinal"] for s in res["stopped"]] == [6, 5]


def test_check_mode_sends_nothing():
    api = FakeApi()
    res = scale(api).run(check_mode=True)
    assert api.sent == []
    assert res["changed"] and [s["ordinal"] for s in res["stopped"]] == [2, 1, 0]


def test_nothing_to_do_when_the_set_is_small_enough_or_absent():
    api = FakeApi(replicas=2)
    assert scale(api, replicas=2).run()["changed"] is False and api.sent == []
    missing = scale(FakeApi(exists=False)).run()
    assert (missing["exists"], missing["changed"]) == (False, False)


def test_a_held_pod_stops_the_scale_down_there_and_names_it():
    api = FakeApi(held={"pxc-1"})
    with pytest.raises(ModuleFailure) as err:
        scale(api, seconds=0.5).run()
    assert (err.value.result["ordinal"], err.value.result["pod"]) == (1, "pxc-1")
    assert "finalizers hold" in err.value.msg and "The set has 1 replicas now" in err.value.msg
    assert ("DELETE", "pxc-0", None) not in api.sent and ("PATCH", "pxc", {"spec": {"replicas": 0}}) not in api.sent


def test_describe_pod():
    pod = {"metadata": {"deletionTimestamp": "T", "finalizers": ["a", "b"]}, "status": {"phase": "Running"},
           "spec": {"nodeName": "n1"}}
    assert describe_pod(pod) == "phase Running; deletion requested at T; finalizers a, b; on node n1"
    assert describe_pod({}) == "phase unknown"


@pytest.mark.parametrize("params, problem", [
    (dict(timeout=0), "timeout must be a positive"),
    (dict(replicas=-1), "replicas must be 0 or more"),
    (dict(name=" "), "name must not be empty"),
])
def test_the_module_refuses_bad_values_naming_the_option(params, problem):
    args = dict(name="pxc", namespace="db", replicas=0, timeout=600)
    args.update(params)
    assert problem in module.validate(args)
    assert module.validate(dict(name="pxc", namespace="db", replicas=0, timeout=600)) is None
