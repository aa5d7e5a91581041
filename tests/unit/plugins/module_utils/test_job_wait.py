"""kubess.stateful.job_wait against an API that keeps Jobs and pods in memory and plays each Job's watch events: when
the wait ends, what a failure says, and what is refused before anything is read."""

from __future__ import annotations

import json
import time

import pytest

from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import ApiFailure, ModuleFailure
from ansible_collections.kubess.stateful.plugins.module_utils._job_wait import JobWait, end_of, pod_state
from ansible_collections.kubess.stateful.plugins.modules import job_wait as module

JOBS = "/apis/batch/v1/namespaces/db/jobs"
PODS = "/api/v1/namespaces/db/pods"
EVENTS = "/api/v1/namespaces/db/events"


def job(name, ended=None, reason="", message="", uid=None):
    conditions = [{"type": "SuccessCriteriaMet" if ended == "Complete" else "FailureTarget", "status": "True"}]
    if ended:
        conditions.append({"type": ended, "status": "True", "reason": reason, "message": message})
    return {"metadata": {"name": name, "resourceVersion": "1", "uid": uid or "uid-" + name},
            "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "uid-" + name}}},
            "status": {"conditions": conditions if ended else []}}


def pod(name, job_name, created, containers, init=()):
    def status(cname, state):
        return {"name": cname, "state": state}

    return {"metadata": {"name": name, "creationTimestamp": created,
                         "labels": {"batch.kubernetes.io/controller-uid": "uid-" + job_name}},
            "status": {"phase": "Failed",
                       "initContainerStatuses": [status(n, s) for n, s in init],
                       "containerStatuses": [status(n, s) for n, s in containers]}}


FAILED = {"terminated": {"exitCode": 2}}
DONE = {"terminated": {"exitCode": 0}}


class Stream:
    """The events queued for one Job, then the end of the watch (which the stream resumes until the deadline)."""

    def __init__(self, events):
        self.events = events

    def stream(self, amt=None, decode_content=False):
        while self.events:
            typ, obj = self.events.pop(0)
            yield (json.dumps({"type": typ, "object": obj}) + "\n").encode()

    def close(self):
        pass


class FakeApi:
    """Jobs as they stand at the first list, then the events each Job's watch delivers; pods; logs by pod/container."""

    def __init__(self, jobs, events=None, pods=(), logs=None, k8s_events=()):
        self.jobs = {j["metadata"]["name"]: j for j in jobs}
        self.events = events or {}
        self.pods = list(pods)
        self.logs = logs or {}
        self.k8s_events = list(k8s_events)
        self.reads = []

    def list(self, path, query=(), timeout=30):
        query = dict(query)
        self.reads.append((path, query))
        if path == EVENTS:
            return {"metadata": {"resourceVersion": "1"}, "items": self.k8s_events}
        if path == PODS:
            wanted = dict(s.split("=", 1) for s in query["labelSelector"].split(","))
            items = [p for p in self.pods if all(p["metadata"]["labels"].get(k) == v for k, v in wanted.items())]
            return {"metadata": {"resourceVersion": "1"}, "items": items}
        name = query["fieldSelector"].split("=", 1)[1]
        items = [self.jobs[name]] if name in self.jobs else []
        return {"metadata": {"resourceVersion": "1"}, "items": items}

    def text(self, path, query=(), timeout=30):
        query = dict(query)
        key = path.split("/")[-2] + "/" + query["container"]
        if key not in self.logs:
            raise ApiFailure(404, "the server could not find the requested resource")
        return "\n".join(self.logs[key].splitlines()[-int(query["tailLines"]):])

    def watch(self, path, query, resource_version, timeout_seconds, read_timeout):
        name = dict(query)["fieldSelector"].split("=", 1)[1]
        return Stream(self.events.setdefault(name, []))


def wait(api, names, failure="", seconds=5.0, log_lines=25):
    return JobWait(api, "db", names, failure, log_lines, time.monotonic() + seconds, seconds)


def test_returns_once_every_job_has_completed_on_the_watch():
    api = FakeApi([job("a"), job("b", "Complete", "CompletionsReached")],
                  events={"a": [("MODIFIED", job("a")), ("MODIFIED", job("a", "Complete", "CompletionsReached"))]})
    res = wait(api, ["a", "b"]).run()
    assert res["jobs"] == [{"name": "a", "state": "Complete", "reason": "CompletionsReached", "message": ""},
                           {"name": "b", "state": "Complete", "reason": "CompletionsReached", "message": ""}]
    assert not res["changed"]
    # Success reads no pod and no log.
    assert all(path == JOBS for path, _query in api.reads)


def test_a_condition_that_only_announces_the_end_is_not_the_end():
    # SuccessCriteriaMet / FailureTarget come before the pods have stopped; Complete / Failed after.
    assert end_of(job("a")) is None
    running = job("a", "Complete")
    running["status"]["conditions"] = running["status"]["conditions"][:1]
    assert end_of(running) is None
    assert end_of(job("a", "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")) == (
        "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")


def test_a_failed_job_fails_with_what_it_means_the_reason_and_the_end_of_its_newest_pods_log():
    old = pod("a-old", "a", "2026-12-04T10:00:00Z", [("backup", FAILED)])
    new = pod("a-new", "a", "2026-12-04T10:01:00Z", [("backup", FAILED)], init=[("unpack", DONE)])
    api = FakeApi([job("a", "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")],
                  pods=[new, old],
                  logs={"a-new/unpack": "unpacked\n", "a-new/backup": "\n".join("line %d" % i for i in range(40)),
                        "a-old/backup": "from the first try\n"})
    with pytest.raises(ModuleFailure) as err:
        wait(api, ["a"], failure="No backup was stored.", log_lines=3).run()
    lines = err.value.msg.splitlines()
    assert lines[0] == "No backup was stored."
    assert lines[1] == ("The Job a failed (BackoffLimitExceeded: Job has reached the specified backoff limit):")
    # The last 3 lines over the newest pod's containers, init containers first; the older pod is not read.
    assert lines[2:] == ["a-new/backup: line 37", "a-new/backup: line 38", "a-new/backup: line 39"]
    assert err.value.result["failed_jobs"] == ["a"]
    assert err.value.result["jobs"][0]["state"] == "Failed"


def test_every_job_failed_by_the_first_look_is_reported_with_its_log():
    api = FakeApi([job("a", "Failed"), job("b", "Complete"), job("c", "Failed")],
                  pods=[pod("c-1", "c", "2026-12-04T10:00:00Z", [("restore", FAILED)])],
                  logs={"c-1/restore": "mbstream: the stream is cut short\n"})
    with pytest.raises(ModuleFailure) as err:
        wait(api, ["a", "b", "c"]).run()
    assert err.value.result["failed_jobs"] == ["a", "c"]
    assert [j["state"] for j in err.value.result["jobs"]] == ["Failed", "Complete", "Failed"]
    assert "The Job a failed:\nno pod of it is left to read a log from, and no event of it" in err.value.msg
    assert "The Job c failed:\nc-1/restore: mbstream: the stream is cut short" in err.value.msg


def test_a_failure_is_reported_at_once_while_another_job_still_runs():
    # b never ends; a fails on its watch: the wait stops there, well before its 30 s deadline.
    api = FakeApi([job("a"), job("b")], events={"a": [("MODIFIED", job("a", "Failed", "BackoffLimitExceeded"))]})
    started = time.monotonic()
    with pytest.raises(ModuleFailure) as err:
        wait(api, ["a", "b"], seconds=30).run()
    assert time.monotonic() - started < 10
    assert [(j["name"], j["state"]) for j in err.value.result["jobs"]] == [("a", "Failed"), ("b", "Running")]
    assert err.value.result["failed_jobs"] == ["a"]


def test_a_job_whose_pods_are_gone_is_reported_with_its_events_and_its_pods_events():
    seen = [
        {"involvedObject": {"kind": "Pod", "name": "a-x1"}, "reason": "Failed",
         "message": "Failed to pull image: not found", "lastTimestamp": "2026-12-04T10:00:01Z"},
        {"involvedObject": {"kind": "Job", "name": "a"}, "reason": "DeadlineExceeded",
         "message": "Job was active longer than specified deadline", "lastTimestamp": "2026-12-04T10:10:00Z"},
        {"involvedObject": {"kind": "Pod", "name": "ab-1"}, "reason": "Failed", "message": "other Job",
         "lastTimestamp": "2026-12-04T10:05:00Z"},
    ]
    api = FakeApi([job("a", "Failed", "DeadlineExceeded", "Job was active longer than specified deadline")],
                  k8s_events=seen)
    with pytest.raises(ModuleFailure) as err:
        wait(api, ["a"]).run()
    assert err.value.msg.splitlines()[1:] == [
        "no pod of it is left; its last events:",
        "Pod/a-x1: Failed: Failed to pull image: not found",
        "Job/a: DeadlineExceeded: Job was active longer than specified deadline"]


def test_a_log_that_cannot_be_read_is_said_and_the_failure_still_reported():
    api = FakeApi([job("a", "Failed")], pods=[pod("a-1", "a", "t", [("backup", FAILED)])])
    with pytest.raises(ModuleFailure, match=r"a-1/backup: its log could not be read \(HTTP 404"):
        wait(api, ["a"]).run()


def test_a_job_still_running_at_the_deadline_is_named_with_its_pods():
    waiting = pod("a-1", "a", "t", [("backup", {"waiting": {"reason": "ImagePullBackOff"}})])
    waiting["status"]["phase"] = "Pending"
    api = FakeApi([job("a")], pods=[waiting])
    with pytest.raises(ModuleFailure) as err:
        wait(api, ["a"], seconds=0.5).run()
    assert err.value.msg == "The Job db/a had not ended after 0.5 s; its pods: a-1: Pending, backup waiting (ImagePullBackOff)"
    assert err.value.result["job"] == "a"


def test_a_missing_job_a_deleted_one_and_one_made_again_are_named():
    with pytest.raises(ModuleFailure, match="^The Job db/nope does not exist$"):
        wait(FakeApi([]), ["nope"]).run()
    api = FakeApi([job("a")], events={"a": [("DELETED", job("a"))]})
    with pytest.raises(ModuleFailure, match="^The Job db/a was deleted before it ended$"):
        wait(api, ["a"]).run()
    # Seen again after a list made anew: another Job of the same name is not the one applied.
    api = FakeApi([job("a")], events={"a": [("MODIFIED", job("a", "Complete", uid="uid-other"))]})
    with pytest.raises(ModuleFailure, match="^The Job db/a was deleted and made again before it ended$"):
        wait(api, ["a"]).run()


def test_check_mode_reads_nothing():
    api = FakeApi([])
    assert wait(api, ["a"]).run(check_mode=True) == {"changed": False, "jobs": [], "seconds": 0.0}
    assert api.reads == []


def test_pod_state_names_the_containers_that_wait_or_failed():
    failed = pod("p", "a", "t", [("main", FAILED), ("side", {"running": {}})], init=[("init", DONE)])
    assert pod_state(failed) == "Failed, main exited 2"


@pytest.mark.parametrize("change, problem", [
    (dict(timeout=0), "timeout must be a positive number of seconds, got 0"),
    (dict(log_lines=0), "log_lines must be a positive number, got 0"),
    (dict(namespace=" "), "namespace must not be empty"),
    (dict(names=[]), "names must list at least one Job"),
    (dict(names=["a", " "]), "names must list at least one Job, and no empty name"),
])
def test_the_module_refuses_bad_options_before_reading(change, problem):
    args = dict(namespace="db", names=["a"], failure="", log_lines=25, timeout=600)
    assert module.check_options(args) is None
    assert problem in module.check_options(dict(args, **change))
