"""The waiting loop of statefulset_wait against a scripted transport.

What the API server does is checked on the real cluster (tests/integration/test_statefulset_wait.py);
here the transport replays chosen answers so that the loop's own decisions can be pinned down,
including the ones a live cluster will not produce on demand (410 Gone, a connection reset at a
chosen moment): where it resumes a watch from, when it lists again, when it returns, what it says.
"""

from __future__ import annotations

import json
import threading

import pytest

from ansible_collections.kubess.stateful.tests.unit.plugins.module_utils.yaml_fixtures import fx
from ansible_collections.kubess.stateful.plugins.module_utils import _exceptions as exc
from ansible_collections.kubess.stateful.plugins.module_utils import _statefulset_waiter as w
from ansible_collections.kubess.stateful.plugins.module_utils import _watch

NS = "demo"
STS_PATH = f"/apis/apps/v1/namespaces/{NS}/statefulsets"
PODS_PATH = f"/api/v1/namespaces/{NS}/pods"
EVENTS_PATH = f"/api/v1/namespaces/{NS}/events"
PVCS_PATH = f"/api/v1/namespaces/{NS}/persistentvolumeclaims"
NEW = "web-7d9c8b6f5d"


def pod(key, ordinal, uid=None, rv="10", revision=NEW):
    p = fx("pods", key)
    meta = p["metadata"]
    meta["name"] = f"web-{ordinal}"
    meta["uid"] = uid or f"uid-{ordinal}"
    meta["resourceVersion"] = rv
    meta.setdefault("labels", {}).update({"app": "web", "tier": "db", "apps.kubernetes.io/pod-index": str(ordinal),
                                          "controller-revision-hash": revision})
    meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": True}]
    return p


def sts(replicas=3, partition=0, generation=4, observed=4, rv="5"):
    s = fx("statefulsets", "rolling_partitioned")
    s["spec"]["replicas"] = replicas
    s["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = partition
    s["metadata"]["generation"] = generation
    s["metadata"]["resourceVersion"] = rv
    s["status"]["observedGeneration"] = observed
    return s


def listing(items, rv="100"):
    return {"kind": "List", "metadata": {"resourceVersion": rv}, "items": items}


class Watch:
    """A scripted watch answer: these events, then ``then`` (raise it), or held open until closed."""

    def __init__(self, events, then=None, hold=True):
        self.events, self.then, self.hold = events, then, hold


class FakeResponse:
    def __init__(self, body=None, watch=None):
        self._body = body
        self._watch = watch
        self.closed = threading.Event()

    @property
    def data(self):
        return json.dumps(self._body).encode()

    def stream(self, amt=None, decode_content=False):
        for typ, obj in self._watch.events:
            yield (json.dumps({"type": typ, "object": obj}) + "\n").encode()
        if self._watch.then is not None:
            raise self._watch.then
        if self._watch.hold:
            self.closed.wait(30)

    def shutdown(self):
        self.closed.set()

    def close(self):
        self.closed.set()


class FakeClient:
    """Stands in for the dynamic client's ``request``: answers from per-(kind, path) scripts, records every request."""

    def __init__(self, lists=None, watches=None):
        self.lists = {k: list(v) for k, v in (lists or {}).items()}
        self.watches = {k: list(v) for k, v in (watches or {}).items()}
        self.requests = []
        self.lock = threading.Lock()

    def request(self, method, path, query_params=(), serialize=True, _request_timeout=None):
        query = dict(query_params)
        is_watch = query.get("watch") == "true"
        with self.lock:
            self.requests.append((path, query))
            script = (self.watches if is_watch else self.lists).get(path, [])
            answer = script.pop(0) if script else None
        if isinstance(answer, Exception):
            raise answer
        if is_watch:
            return FakeResponse(watch=answer or Watch([]))
        return FakeResponse(body=answer if answer is not None else listing([]))

    def watches_of(self, path):
        return [q for p, q in self.requests if p == path and q.get("watch") == "true"]


class Gone(Exception):
    """What the kubernetes client raises for an HTTP error: status, reason and body."""

    def __init__(self, status, message=""):
        super().__init__(message)
        self.status, self.reason, self.body = status, message, json.dumps({"message": message})


def waiter(client, **kwargs):
    kwargs.setdefault("timeout", 5)
    return w.StatefulSetWaiter(_watch.KubeApi(client), "web", NS, **kwargs)


def test_returns_when_the_last_ordinal_is_ready_with_increasing_times():
    client = FakeClient(
        lists={STS_PATH: [listing([sts()])], PODS_PATH: [listing([pod("ready_rev_new", 0)], rv="100")]},
        watches={PODS_PATH: [Watch([
            ("ADDED", pod("created_pending", 1, rv="101")),
            ("MODIFIED", pod("ready_rev_new", 1, rv="102")),
            ("ADDED", pod("created_pending", 2, rv="103")),
            ("MODIFIED", pod("ready_rev_new", 2, rv="104")),
        ])]},
    )
    res = waiter(client).wait()
    assert [o["ready"] for o in res["ordinals"]] == [True, True, True]
    times = [o["ready_seconds"] for o in res["ordinals"]]
    assert times == sorted(times)
    assert res["replicas"] == 3 and res["update_revision"] == NEW and res["changed"] is False
    # Watches start from the list's resourceVersion, carry a server-side timeout near the deadline, ask for bookmarks.
    (pod_watch,) = client.watches_of(PODS_PATH)
    assert pod_watch["resourceVersion"] == "100" and pod_watch["allowWatchBookmarks"] == "true"
    assert 1 <= pod_watch["timeoutSeconds"] <= 6
    assert pod_watch["labelSelector"] == "app=web,tier=db"
    assert res["api_requests"] == 4  # list + watch, for the set and for its pods
    assert not any(p in (PVCS_PATH, EVENTS_PATH) for p, _q in client.requests)


def test_resumes_a_dropped_watch_from_the_last_resource_version():
    reset = _watch.Urllib3Error("Connection broken: ConnectionResetError(104)")
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=2)])], PODS_PATH: [listing([], rv="100")]},
        watches={PODS_PATH: [
            Watch([("ADDED", pod("ready_rev_new", 0, rv="120"))], then=reset),
            OSError(111, "Connection refused"),  # the API server is still down
            Watch([("ADDED", pod("ready_rev_new", 1, rv="130"))]),
        ]},
    )
    res = waiter(client).wait()
    assert all(o["ready"] for o in res["ordinals"])
    assert [q["resourceVersion"] for q in client.watches_of(PODS_PATH)] == ["100", "120", "120"]
    assert res["reconnects"] == 2 and res["relists"] == 0
    assert [p for p, q in client.requests if p == PODS_PATH and "watch" not in q] == [PODS_PATH]  # no relist


def test_lists_again_after_410_gone():
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=2)])],
               PODS_PATH: [listing([pod("created_pending", 0)], rv="100"),
                           listing([pod("ready_rev_new", 0, rv="300"), pod("ready_rev_new", 1, rv="301")], rv="301")]},
        watches={PODS_PATH: [Watch([("ERROR", {"kind": "Status", "code": 410, "message": "too old resource version"})],
                                   hold=False)]},
    )
    res = waiter(client).wait()
    assert all(o["ready"] for o in res["ordinals"])
    assert res["relists"] == 1


def test_410_as_an_http_status_also_lists_again():
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=1)])],
               PODS_PATH: [listing([], rv="100"), listing([pod("ready_rev_new", 0)], rv="200")]},
        watches={PODS_PATH: [Gone(410, "too old resource version: 100 (250)")]},
    )
    res = waiter(client).wait()
    assert res["ordinals"][0]["ready"] and res["relists"] == 1


def test_a_recreated_pod_is_not_ready_until_it_is_ready_again():
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=2)])],
               PODS_PATH: [listing([pod("ready_rev_new", 0, uid="old"), pod("running_not_ready", 1)], rv="100")]},
        watches={PODS_PATH: [Watch([
            ("DELETED", pod("ready_rev_new", 0, uid="old", rv="101")),
            ("ADDED", pod("created_pending", 0, uid="new", rv="102")),
            ("MODIFIED", pod("ready_rev_new", 1, rv="103")),
        ])]},
    )
    with pytest.raises(exc.ModuleFailure) as err:
        waiter(client, timeout=1).wait()
    assert err.value.result["reason"] == "Timeout"
    assert err.value.result["ordinal"] == 0
    assert err.value.result["ordinals"][0]["uid"] == "new" and err.value.result["ordinals"][0]["ready"] is False


def test_a_recreated_pod_counts_once_ready():
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=1)])], PODS_PATH: [listing([pod("running_not_ready", 0, uid="old")])]},
        watches={PODS_PATH: [Watch([
            ("DELETED", pod("running_not_ready", 0, uid="old", rv="101")),
            ("ADDED", pod("created_pending", 0, uid="new", rv="102")),
            ("MODIFIED", pod("ready_rev_new", 0, uid="new", rv="103")),
        ])]},
    )
    res = waiter(client).wait()
    assert res["ordinals"][0]["uid"] == "new" and res["ordinals"][0]["ready"]


def test_does_not_return_before_the_controller_observes_the_new_spec():
    # Every pod is Ready on what status.updateRevision names, but that status describes generation 4, not 5: the
    # controller has not looked at the new template yet. Nothing more arrives, so the wait must run out.
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=2, generation=5, observed=4)])],
               PODS_PATH: [listing([pod("ready_rev_new", 0), pod("ready_rev_new", 1)], rv="100")]},
    )
    with pytest.raises(exc.ModuleFailure) as err:
        waiter(client, timeout=1).wait()
    res = err.value.result
    assert res["reason"] == "Timeout"
    assert [o["ready"] for o in res["ordinals"]] == [True, True]  # Ready by the stale status, and still not done
    assert "has not observed generation 5 (status.observedGeneration 4)" in err.value.msg
    assert "kube-controller-manager" in err.value.msg


def test_judges_pods_against_the_revision_of_the_observed_spec():
    # Once the controller observes generation 5 it names a new update revision: the pods must run that one.
    stale = sts(replicas=1, generation=5, observed=4)
    fresh = sts(replicas=1, generation=5, observed=5, rv="6")
    fresh["status"]["updateRevision"] = "web-99"
    client = FakeClient(
        lists={STS_PATH: [listing([stale])], PODS_PATH: [listing([pod("ready_rev_new", 0)], rv="100")]},
        watches={STS_PATH: [Watch([("MODIFIED", fresh)])],
                 PODS_PATH: [Watch([("MODIFIED", pod("ready_rev_new", 0, uid="u2", rv="110", revision="web-99"))])]},
    )
    res = waiter(client).wait()
    assert res["update_revision"] == "web-99"
    assert res["ordinals"][0]["revision"] == "web-99"


def test_partition_spares_lower_ordinals():
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=3, partition=2)])],
               PODS_PATH: [listing([pod("ready_rev_new", 0, revision="old"), pod("ready_rev_new", 1, revision="old"),
                                    pod("ready_rev_new", 2, revision=NEW)])]},
    )
    res = waiter(client).wait()
    assert [o["revision"] for o in res["ordinals"]] == ["old", "old", NEW]


def test_missing_set_fails_at_once():
    client = FakeClient(lists={STS_PATH: [listing([])]})
    with pytest.raises(exc.ModuleFailure) as err:
        waiter(client, timeout=30).wait()
    assert err.value.result["reason"] == "StatefulSetNotFound"
    assert "demo/web not found" in err.value.msg and "wait_for_set" in err.value.msg
    assert err.value.result["duration"] < 5


def test_wait_for_set_waits_for_it_to_appear():
    client = FakeClient(
        lists={STS_PATH: [listing([], rv="50")], PODS_PATH: [listing([pod("ready_rev_new", 0)])]},
        watches={STS_PATH: [Watch([("ADDED", sts(replicas=1))])]},
    )
    res = waiter(client, wait_for_set=True).wait()
    assert res["ordinals"][0]["ready"]
    assert client.watches_of(STS_PATH)[0]["resourceVersion"] == "50"
    assert client.watches_of(STS_PATH)[0]["fieldSelector"] == "metadata.name=web"


def test_stuck_ordinal_fails_with_ordinal_reason_and_events():
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=3)])],
               PODS_PATH: [listing([pod("ready_rev_new", 0), pod("image_pull_backoff", 1, uid="0b7f6b2e-0000-4000-8000-0000000000e1")])],
               EVENTS_PATH: [listing([fx("events", k) for k in ("pod_scheduled", "pod_pulling", "pod_failed", "pod_backoff")])]},
    )
    with pytest.raises(exc.ModuleFailure) as err:
        waiter(client, timeout=30).wait()
    res = err.value.result
    assert res["reason"] == "ImagePullBackOff" and res["ordinal"] == 1 and res["pod"] == "web-1"
    assert res["events"][-1].startswith("2025-03-01T10:01:40Z Warning BackOff")  # newest last
    for part in ("StatefulSet demo/web", "ordinal 1 (pod web-1)", "ImagePullBackOff", "Pulling image", "Try:"):
        assert part in err.value.msg
    events_query = [q for p, q in client.requests if p == EVENTS_PATH][0]
    assert events_query["fieldSelector"] == "involvedObject.kind=Pod,involvedObject.name=web-1"


def test_fail_fast_off_waits_for_the_timeout():
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=1)])], PODS_PATH: [listing([pod("crash_loop", 0)])]},
    )
    with pytest.raises(exc.ModuleFailure) as err:
        waiter(client, timeout=1, fail_fast=False).wait()
    assert err.value.result["reason"] == "Timeout"
    assert "CrashLoopBackOff" in err.value.msg


def test_claims_are_watched_only_when_a_pod_waits_for_them():
    pending = pod("unschedulable_unbound_pvc", 0)
    pvc = fx("pvcs", "pending_no_class")
    binding = fx("events", "failed_binding")
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=1)])], PODS_PATH: [listing([pod("created_pending", 0)])],
               PVCS_PATH: [listing([pvc])], EVENTS_PATH: [listing([]), listing([])]},
        watches={PODS_PATH: [Watch([("MODIFIED", pending)])],
                 EVENTS_PATH: [Watch([("ADDED", binding)])]},
    )
    with pytest.raises(exc.ModuleFailure) as err:
        waiter(client, timeout=30).wait()
    assert err.value.result["reason"] == "PersistentVolumeClaimPending"
    assert "no persistent volumes available" in err.value.msg
    event_watch = client.watches_of(EVENTS_PATH)[0]
    assert event_watch["fieldSelector"] == "involvedObject.kind=PersistentVolumeClaim"


def test_no_claim_watch_for_pods_without_claims():
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=1)])], PODS_PATH: [listing([pod("created_pending", 0)])]},
    )
    with pytest.raises(exc.ModuleFailure):
        waiter(client, timeout=1).wait()
    assert not any(p == PVCS_PATH for p, _q in client.requests)


def test_timeout_names_the_missing_ordinal():
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=2)])], PODS_PATH: [listing([pod("ready_rev_new", 0)])],
               EVENTS_PATH: [listing([])]},
    )
    with pytest.raises(exc.ModuleFailure) as err:
        waiter(client, timeout=1).wait()
    assert err.value.result["ordinal"] == 1
    assert "waiting for ordinal 1" in err.value.msg and "pod web-1 does not exist" in err.value.msg
    assert "the controller has not created it, although ordinal 0 is Ready (OrderedReady)" in err.value.msg


def test_timeout_on_an_ordinal_beyond_the_sets_replicas_says_so():
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=2)])],
               PODS_PATH: [listing([pod("ready_rev_new", 0), pod("ready_rev_new", 1)])], EVENTS_PATH: [listing([])]},
    )
    with pytest.raises(exc.ModuleFailure) as err:
        waiter(client, timeout=1, replicas=3).wait()
    assert err.value.result["ordinal"] == 2
    assert "pod web-2 does not exist: the set's spec.replicas is 2, so the controller does not create it" in err.value.msg


def test_forbidden_is_reported_with_the_permissions_needed():
    client = FakeClient(lists={STS_PATH: [Gone(403, 'statefulsets.apps is forbidden: User "bob" cannot list')]})
    with pytest.raises(exc.ModuleFailure) as err:
        waiter(client, timeout=30).wait()
    assert err.value.result["reason"] == "ApiError"
    assert "HTTP 403" in err.value.msg and "get, list and watch" in err.value.msg


def test_check_mode_reads_once_and_does_not_wait():
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=3)])],
               PODS_PATH: [listing([pod("ready_rev_new", 0), pod("crash_loop", 1)])]},
    )
    res = waiter(client, timeout=300).check()
    assert res["exists"] is True and res["ready"] is False
    assert res["would_wait_for"] == [1, 2]
    assert res["stuck"][0]["ordinal"] == 1 and res["stuck"][0]["reason"] == "CrashLoopBackOff"
    assert not client.watches_of(STS_PATH) and not client.watches_of(PODS_PATH)
    assert res["api_requests"] == 2


def test_check_mode_on_a_missing_set():
    res = waiter(FakeClient(lists={STS_PATH: [listing([])]})).check()
    assert res["exists"] is False and "does not exist" in res["msg"]


def test_check_mode_is_not_ready_while_the_controller_has_not_observed_the_spec():
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=2, generation=5, observed=4)])],
               PODS_PATH: [listing([pod("ready_rev_new", 0), pod("ready_rev_new", 1)])]},
    )
    res = waiter(client, timeout=300).check()
    assert res["exists"] is True and res["would_wait_for"] == []  # every pod Ready by the stale status
    assert res["ready"] is False
    assert "controller catching up" in res["msg"]


def test_check_mode_is_ready_once_observed():
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=2, generation=5, observed=5)])],
               PODS_PATH: [listing([pod("ready_rev_new", 0), pod("ready_rev_new", 1)])]},
    )
    res = waiter(client, timeout=300).check()
    assert res["ready"] is True and "return at once" in res["msg"]


@pytest.mark.parametrize(
    "err, expected",
    [
        (Gone(410, "gone"), _watch.WatchExpired),
        (Gone(503, "unavailable"), exc.TransientApiError),
        (Gone(0, "ssl"), exc.TransientApiError),
        (Gone(404, "not found"), exc.ApiFailure),
        (OSError(111, "refused"), exc.TransientApiError),
        (ValueError("bug"), type(None)),
    ],
)
def test_classify_api_error(err, expected):
    assert isinstance(_watch.classify_api_error(err), expected)


class Posts:
    """A stream's callback: collects (type, payload) and wakes whoever waits for a given type."""

    def __init__(self):
        self.items, self.cond = [], threading.Condition()

    def __call__(self, stream, typ, payload):
        with self.cond:
            self.items.append((typ, payload))
            self.cond.notify_all()

    def wait_for(self, typ, timeout=5):
        with self.cond:
            assert self.cond.wait_for(lambda: any(t == typ for t, _p in self.items), timeout), self.items
        return [t for t, _p in self.items]


def test_a_stream_reports_through_its_callback_alone():
    reset = _watch.Urllib3Error("Connection broken")
    client = FakeClient(
        lists={PODS_PATH: [listing([pod("created_pending", 0)], rv="100"), listing([pod("ready_rev_new", 0)], rv="300")]},
        watches={PODS_PATH: [
            Watch([("MODIFIED", pod("running_not_ready", 0, rv="110"))], then=reset),
            Watch([("ERROR", {"kind": "Status", "code": 410, "message": "too old resource version"})], hold=False),
            Watch([("BOOKMARK", {"metadata": {"resourceVersion": "310"}}), ("DELETED", pod("ready_rev_new", 0, rv="311"))]),
        ]},
    )
    posts = Posts()
    stream = _watch.WatchStream(_watch.KubeApi(client), "pods", PODS_PATH, [], posts, remaining=lambda: 30)
    stream.start()
    try:
        types = posts.wait_for("DELETED")
    finally:
        stream.stop()
        stream.join(5)
    # The first list, an event, the reset and the watch again, 410 and the list again, then a bookmark (not posted).
    assert types == ["SYNC", "MODIFIED", "DISCONNECTED", "CONNECTED", "RESYNC", "DELETED"]
    assert [q["resourceVersion"] for q in client.watches_of(PODS_PATH)] == ["100", "110", "300"]
    assert not stream.is_alive()


# --------------------------------------------------------------------------- a controller that does not act

SETS_EVENTS = "involvedObject.kind=StatefulSet,involvedObject.name=web"


def test_a_silent_controller_fails_the_wait_at_the_stall_threshold_naming_the_ordinal():
    # Ordinal 0 is Ready and OrderedReady owes pod web-1, which never comes: fail after 1 s, not after 30.
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=3)])], PODS_PATH: [listing([pod("ready_rev_new", 0)])],
               EVENTS_PATH: [listing([fx("events", "sts_successful_create")])]},
    )
    with pytest.raises(exc.ModuleFailure) as err:
        waiter(client, timeout=30, controller_stall_timeout=1).wait()
    res, msg = err.value.result, err.value.msg
    assert res["reason"] == "ControllerStalled"
    assert res["ordinal"] == 1 and res["pod"] == "web-1"
    assert 1 <= res["duration"] < 5
    stall = res["stall"]
    assert (stall["action"], stall["ordinal"], stall["pod"], stall["threshold"]) == ("create", 1, "web-1", 1)
    assert stall["since_seconds"] < 1 and stall["seconds"] >= 1
    assert stall["since"].endswith("Z") and stall["since"][:2] == "20"
    for part in ("StatefulSet demo/web: the StatefulSet controller has not acted for 1s",
                 "it has not created pod web-1 (ordinal 1), although every ordinal below it is Ready",
                 "1/3 ordinals Ready, waiting for ordinal 1", "create Pod web-0 in StatefulSet web successful",
                 "is kube-controller-manager running?", "controller_stall_timeout"):
        assert part in msg, (part, msg)
    assert res["events"][-1].endswith("create Pod web-0 in StatefulSet web successful")
    assert [q["fieldSelector"] for p, q in client.requests if p == EVENTS_PATH] == [SETS_EVENTS]


def test_a_controller_whose_requests_fail_is_told_apart_from_a_silent_one():
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=2)])], PODS_PATH: [listing([pod("ready_rev_new", 0)])],
               EVENTS_PATH: [listing([fx("events", "sts_successful_create"), fx("events", "sts_failed_create")])]},
    )
    with pytest.raises(exc.ModuleFailure) as err:
        waiter(client, timeout=30, controller_stall_timeout=1).wait()
    assert err.value.result["reason"] == "ControllerStalled"
    assert "the controller runs but its requests fail (FailedCreate: create Pod web-1" in err.value.result["hint"]
    assert "exceeded quota" in err.value.msg and "is kube-controller-manager running?" not in err.value.msg


def test_a_spec_never_observed_fails_at_the_stall_threshold():
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=2, generation=5, observed=4)])],
               PODS_PATH: [listing([pod("ready_rev_new", 0), pod("ready_rev_new", 1)])]},
    )
    with pytest.raises(exc.ModuleFailure) as err:
        waiter(client, timeout=30, controller_stall_timeout=1).wait()
    res = err.value.result
    assert res["reason"] == "ControllerStalled" and res["stall"]["action"] == "observe"
    assert (res["stall"]["generation"], res["stall"]["observed_generation"]) == (5, 4)
    assert res["ordinal"] is None and res["duration"] < 5  # every ordinal Ready: the set's spec is what it waits for
    assert "it has not observed generation 5 of the set (status.observedGeneration is 4)" in err.value.msg


def test_stall_check_off_waits_for_the_timeout_and_says_what_the_controller_owes():
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=2)])], PODS_PATH: [listing([pod("ready_rev_new", 0)])]},
    )
    with pytest.raises(exc.ModuleFailure) as err:
        waiter(client, timeout=2, controller_stall_timeout=0).wait()
    res = err.value.result
    assert res["reason"] == "Timeout" and res["duration"] >= 2
    assert res["stall"]["action"] == "create" and res["stall"]["ordinal"] == 1
    assert "Also, the StatefulSet controller has not acted for" in err.value.msg
    assert "is kube-controller-manager running?" in err.value.msg


def test_more_ordinals_than_the_set_has_are_no_stall():
    # replicas: 3 asked of a set of 2: the controller owes nothing, the user asked for a pod that will not come.
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=2)])],
               PODS_PATH: [listing([pod("ready_rev_new", 0), pod("ready_rev_new", 1)])]},
    )
    with pytest.raises(exc.ModuleFailure) as err:
        waiter(client, timeout=2, replicas=3, controller_stall_timeout=1).wait()
    assert err.value.result["reason"] == "Timeout" and "stall" not in err.value.result
    assert err.value.result["ordinal"] == 2


def test_no_stall_is_declared_while_the_api_server_is_unreachable():
    # The pod watch drops at once and cannot connect again: nothing the waiter knows is fresh, so no stall is declared.
    client = FakeClient(
        lists={STS_PATH: [listing([sts(replicas=2)])], PODS_PATH: [listing([pod("ready_rev_new", 0)])]},
        watches={PODS_PATH: [OSError(111, "Connection refused")] * 50},
    )
    with pytest.raises(exc.ModuleFailure) as err:
        waiter(client, timeout=3, controller_stall_timeout=1).wait()
    res = err.value.result
    assert res["reason"] == "Timeout" and res["reconnects"] >= 2
    assert "The API server was unreachable at the end" in err.value.msg


@pytest.mark.parametrize("threshold, interval", [(1, 0.5), (5, 0.5), (60, 3.0), (100, 5.0), (600, 5.0), (0, 5.0)])
def test_the_controller_is_looked_at_often_enough_for_its_threshold(threshold, interval):
    assert w.controller_look_interval(threshold) == interval
