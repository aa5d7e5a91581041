"""kubess.stateful.job_run against an API that keeps Jobs in memory: which Job is deleted first and why, which is
applied, what check mode sends, and what is refused before anything is read. The deletion and the wait are the
modules' own (k8s_delete's and job_wait's, tested with them) and are recorded here; the whole run against a real API
server is in tests/integration/test_job_run.py."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from ansible_collections.kubess.stateful.plugins.module_utils import _job_run
from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import ApiFailure, ModuleFailure
from ansible_collections.kubess.stateful.plugins.module_utils._job_run import SPEC_DIGEST, JobRun, spec_digest, stale_reason
from ansible_collections.kubess.stateful.plugins.modules import job_run as module

JOBS = "/apis/batch/v1/namespaces/db/jobs"
SOURCE = "kubess.io/restored-from"


def definition(name, source="db_pxc-20261204T100000Z.mbstream.gz"):
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": "db", "annotations": {SOURCE: source}},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "restore"}]}}}}


def live(name, source="db_pxc-20261204T100000Z.mbstream.gz", ended=None, deleting=False):
    meta = {"name": name, "uid": "uid-" + name, "annotations": {SOURCE: source} if source else {}}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-04T10:00:00Z"
    conditions = [{"type": ended, "status": "True", "reason": "BackoffLimitExceeded" if ended == "Failed" else ""}]
    return {"metadata": meta, "status": {"conditions": conditions if ended else []}}


class FakeApi:
    """Jobs by name; a GET of a missing one is a 404; every write is recorded with its query."""

    def __init__(self, *jobs):
        self.jobs = {j["metadata"]["name"]: j for j in jobs}
        self.sent = []

    def list(self, path, query=(), timeout=30):
        name = path.rsplit("/", 1)[1]
        assert path == JOBS + "/" + name
        if name not in self.jobs:
            raise ApiFailure(404, "jobs.batch \"{0}\" not found".format(name))
        return self.jobs[name]

    def send(self, method, path, body=None, query=(), content_type=None, timeout=30):
        self.sent.append((method, path.rsplit("/", 1)[1], dict(query), content_type, json.loads(body)))
        return {}


class Recorder:
    """Stands in for the deletion and for the wait (a JobWait's API, namespace, deadline and clock, and its run):
    records what they were asked, in order."""

    def __init__(self, api, log, failure=None):
        self.api, self.namespace, self.deadline, self.clock = api, "db", time.monotonic() + 5, time.monotonic
        self.log, self.failure = log, failure

    def deletion(self, api, namespace, objects, propagation, wait, deadline, clock):
        assert (api, namespace, deadline) == (self.api, "db", self.deadline)
        self.log.append(("delete", [o["name"] for o in objects], propagation, wait))
        return SimpleNamespace(run=lambda: {"changed": True})

    def run(self, check_mode=False):
        if self.failure:
            raise self.failure
        self.log.append(("wait",))
        return {"changed": False, "jobs": [], "seconds": 1.0}


def job_run(api, definitions, monkeypatch, log, failure=None):
    wait = Recorder(api, log, failure)
    monkeypatch.setattr(_job_run, "Deletion", wait.deletion)
    return JobRun(wait, definitions, "kubess-pxc")


@pytest.mark.parametrize("found, reason", [
    (None, None),
    (live("r"), None),
    (live("r", ended="Complete"), None),
    (live("r", ended="Failed"), "it failed (BackoffLimitExceeded)"),
    (live("r", deleting=True), "it is being deleted"),
    (live("r", source="db_pxc-2020.mbstream.gz", ended="Complete"),
     "its annotation kubess.io/restored-from is 'db_pxc-2020.mbstream.gz', not 'db_pxc-20261204T100000Z.mbstream.gz'"),
    (live("r", source=None), "its annotation kubess.io/restored-from is None, not "
                             "'db_pxc-20261204T100000Z.mbstream.gz'"),
])
def test_a_job_serves_unless_it_failed_is_being_deleted_or_was_made_for_something_else(found, reason):
    assert stale_reason(found, definition("r")) == reason


def test_a_job_made_from_another_spec_does_not_serve_one_applied_by_other_means_does():
    made = live("r", ended="Complete")
    made["metadata"]["annotations"][SPEC_DIGEST] = spec_digest(definition("r"))
    assert stale_reason(made, definition("r")) is None
    other = definition("r")
    other["spec"]["template"]["spec"]["containers"][0]["args"] = ["--initial-cluster=five-members"]
    assert stale_reason(made, other) == (
        "it was made from another spec (another membership, image, command or placement)")
    # Without the digest (not applied by job_run), the annotations alone decide.
    assert stale_reason(live("r", ended="Complete"), other) is None
    # The digest does not depend on the order of the keys.
    assert spec_digest({"spec": {"a": 1, "b": [2]}}) == spec_digest({"spec": {"b": [2], "a": 1}})


def test_a_missing_job_is_applied_then_waited_for(monkeypatch):
    api, log = FakeApi(), []
    res = job_run(api, [definition("r")], monkeypatch, log).run()
    assert log == [("wait",)]
    ((method, name, query, content_type, body),) = api.sent
    assert (method, name, content_type) == ("PATCH", "r", "application/apply-patch+yaml")
    assert query == {"fieldManager": "kubess-pxc", "force": "true"}
    # The definition as given, and the digest of its spec.
    want = definition("r")
    want["metadata"]["annotations"][SPEC_DIGEST] = spec_digest(want)
    assert body == want
    assert res["changed"] and res["started"] == ["r"] and res["deleted"] == []


def test_a_job_that_serves_is_only_waited_for(monkeypatch):
    api, log = FakeApi(live("r", ended="Complete")), []
    res = job_run(api, [definition("r")], monkeypatch, log).run()
    assert log == [("wait",)] and api.sent == []
    assert not res["changed"] and res["started"] == []


def test_stale_jobs_are_deleted_and_gone_before_any_job_is_applied(monkeypatch):
    api = FakeApi(live("r-0", ended="Complete"), live("r-1", ended="Failed"),
                  live("r-2", source="db_pxc-2020.mbstream.gz", ended="Complete"))
    log = []
    res = job_run(api, [definition("r-0"), definition("r-1"), definition("r-2"), definition("r-3")],
                  monkeypatch, log).run()
    # One deletion of both, foreground and waited for, then the applies, then one wait for all four.
    assert log == [("delete", ["r-1", "r-2"], "Foreground", True), ("wait",)]
    assert [name for _m, name, _q, _c, _b in api.sent] == ["r-1", "r-2", "r-3"]
    assert res["started"] == ["r-1", "r-2", "r-3"]
    assert [entry["name"] for entry in res["deleted"]] == ["r-1", "r-2"]
    assert res["deleted"][0]["reason"] == "it failed (BackoffLimitExceeded)"


def test_a_refused_apply_after_a_deletion_says_what_was_deleted(monkeypatch):
    api, log = FakeApi(live("r", ended="Failed")), []

    def refuse(*_args, **_kwargs):
        raise ApiFailure(422, "Job.batch \"r\" is invalid")

    api.send = refuse
    with pytest.raises(ModuleFailure) as err:
        job_run(api, [definition("r")], monkeypatch, log).run()
    assert err.value.msg == "The Jobs in namespace db: the API refused a request: HTTP 422: Job.batch \"r\" is invalid"
    assert err.value.result["changed"] and err.value.result["deleted"][0]["name"] == "r"
    assert log == [("delete", ["r"], "Foreground", True)]


def test_check_mode_dry_runs_only_the_jobs_that_are_not_there_and_waits_for_nothing(monkeypatch):
    api = FakeApi(live("r-0", ended="Failed"), live("r-1", ended="Complete"))
    log = []
    res = job_run(api, [definition("r-0"), definition("r-1"), definition("r-2")], monkeypatch, log).run(
        check_mode=True)
    assert log == []
    # r-0 would replace a Job still there: not applied, even as a dry run (its template is immutable).
    assert [(m, name, q.get("dryRun")) for m, name, q, _c, _b in api.sent] == [("PATCH", "r-2", "All")]
    assert res["changed"] and res["started"] == ["r-0", "r-2"] and res["jobs"] == []
    assert [entry["name"] for entry in res["deleted"]] == ["r-0"]


def test_check_mode_with_every_job_serving_reports_no_change(monkeypatch):
    api, log = FakeApi(live("r", ended="Complete")), []
    res = job_run(api, [definition("r")], monkeypatch, log).run(check_mode=True)
    assert not res["changed"] and api.sent == [] and log == []


def test_a_failed_wait_says_what_was_deleted_and_started(monkeypatch):
    api, log = FakeApi(live("r", ended="Failed")), []
    failure = ModuleFailure("Nothing was restored.\nThe Job r failed", failed_jobs=["r"])
    with pytest.raises(ModuleFailure) as err:
        job_run(api, [definition("r")], monkeypatch, log, failure).run()
    assert err.value.result["failed_jobs"] == ["r"]
    assert err.value.result["started"] == ["r"] and err.value.result["deleted"][0]["name"] == "r"


OPTIONS = {"namespace": "db", "definitions": [definition("r")], "field_manager": "kubess-pxc", "failure": "",
           "log_lines": 25, "timeout": 60}


@pytest.mark.parametrize("change, problem", [
    ({"timeout": 0}, "timeout must be a positive number of seconds, got 0"),
    ({"namespace": " "}, "namespace must not be empty"),
    ({"field_manager": ""}, "field_manager must not be empty"),
    ({"definitions": []}, "definitions must list at least one Job"),
    ({"definitions": ["r"]}, "definitions[0] must be a mapping (a Job manifest), got 'r'"),
    ({"definitions": [dict(definition("r"), kind="Pod")]}, "definitions[0] must be a batch/v1 Job, got batch/v1/Pod"),
    ({"definitions": [dict(definition("r"), metadata={"name": ""})]}, "definitions[0].metadata.name must be a non-empty string"),
    ({"definitions": [dict(definition("r"), metadata={"name": "r", "namespace": "web"})]},
     "definitions[0] (r) is in namespace web, not db"),
    ({"definitions": [definition("r"), definition("r")]}, "definitions[1] names the Job r a second time"),
])
def test_the_module_refuses_bad_options_before_reading(change, problem):
    assert module.check_options(dict(OPTIONS, **change)) == problem
    assert module.check_options(OPTIONS) is None
