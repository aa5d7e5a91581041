"""kubess.stateful.job_run on the local cluster, run through ansible-playbook as the roles run it: a Job is run once
for its definition, a Job left failed or made for another source is replaced, and check mode writes nothing.

The Jobs' pods run on the simulated nodes (see test_job_wait.py): a pod completes, unless labelled to fail. The
real backup and restore Jobs are run by ``make e2e``.
"""

from __future__ import annotations

import json

from test_job_wait import job_manifest
from test_statefulset_wait import ModuleRun

SOURCE = "kubess.io/restored-from"


def definition(name: str, source: str, stuck: str | None = None) -> dict:
    job = json.loads(job_manifest(name, stuck=stuck))
    job["metadata"]["annotations"] = {SOURCE: source}
    return job


def run(cluster, tmp_path, namespace, *definitions, check_mode=False) -> dict:
    args = dict(namespace=namespace, definitions=list(definitions), field_manager="kubess-test",
                failure="Nothing was restored.", timeout=120)
    return ModuleRun(cluster, tmp_path, args, check_mode, module="kubess.stateful.job_run").result()


def uid(cluster, namespace, name) -> str:
    return cluster.get_json("job", name, "-n", namespace)["metadata"]["uid"]


def test_runs_a_job_once_for_its_definition(cluster, namespace, tmp_path):
    res = run(cluster, tmp_path, namespace, definition("restore", "a.gz"))
    assert res["_rc"] == 0 and res["changed"], res
    assert res["started"] == ["restore"] and res["deleted"] == [], res
    assert [(job["name"], job["state"]) for job in res["jobs"]] == [("restore", "Complete")]
    first = cluster.get_json("job", "restore", "-n", namespace, "--show-managed-fields")
    managers = {entry["manager"] for entry in first["metadata"]["managedFields"]}
    assert "kubess-test" in managers, managers
    # The digest of the spec it was applied from: a definition with another spec would replace it.
    assert len(first["metadata"]["annotations"]["kubess.io/job-spec-sha256"]) == 64
    # The same definition again: the complete Job serves; nothing is written, nothing run again.
    again = run(cluster, tmp_path, namespace, definition("restore", "a.gz"))
    assert again["_rc"] == 0 and not again["changed"] and again["started"] == [], again
    assert [(job["name"], job["state"]) for job in again["jobs"]] == [("restore", "Complete")]
    assert uid(cluster, namespace, "restore") == first["metadata"]["uid"]


def test_a_job_left_failed_is_deleted_and_run_again(cluster, namespace, tmp_path):
    failed = run(cluster, tmp_path, namespace, definition("restore", "a.gz", stuck="Failed"))
    assert failed["_rc"] != 0 and failed["failed_jobs"] == ["restore"], failed
    assert failed["msg"].startswith("Nothing was restored.\nThe Job restore failed"), failed["msg"]
    before = uid(cluster, namespace, "restore")
    # A fixed definition of the same name (its pod template differs: it could not be applied over the old Job).
    res = run(cluster, tmp_path, namespace, definition("restore", "a.gz"))
    assert res["_rc"] == 0 and res["changed"], res
    assert [entry["name"] for entry in res["deleted"]] == ["restore"], res
    assert res["deleted"][0]["reason"].startswith("it failed"), res
    assert [(job["name"], job["state"]) for job in res["jobs"]] == [("restore", "Complete")]
    assert uid(cluster, namespace, "restore") != before


def test_check_mode_reports_a_replacement_and_writes_nothing(cluster, namespace, tmp_path):
    assert run(cluster, tmp_path, namespace, definition("restore", "a.gz"))["_rc"] == 0
    before = cluster.get_json("job", "restore", "-n", namespace)
    res = run(cluster, tmp_path, namespace, definition("restore", "b.gz"), definition("other", "b.gz"),
              check_mode=True)
    assert res["_rc"] == 0 and res["changed"], res
    assert res["started"] == ["restore", "other"] and res["jobs"] == [], res
    reason = "its annotation kubess.io/restored-from is 'a.gz', not 'b.gz'"
    assert res["deleted"] == [{"name": "restore", "reason": reason}], res
    after = cluster.get_json("job", "restore", "-n", namespace)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["metadata"]["annotations"][SOURCE] == "a.gz"
    assert not cluster.get_json("jobs", "-n", namespace, "--field-selector", "metadata.name=other")["items"]
    # The real run then replaces it.
    res = run(cluster, tmp_path, namespace, definition("restore", "b.gz"))
    assert res["_rc"] == 0 and [entry["name"] for entry in res["deleted"]] == ["restore"], res
    assert cluster.get_json("job", "restore", "-n", namespace)["metadata"]["annotations"][SOURCE] == "b.gz"
