"""kubess.stateful.job_wait on the local cluster, run through ansible-playbook as the roles run it.

The Jobs' pods run on the simulated nodes: a Job's pod completes (kwok's stages for Jobs); a pod labelled
``stuck.stage.kubess.io/reason=Failed`` fails, so its Job (no retries) fails; one labelled with another reason stays
Pending with that reason, and its Job never ends. The real backup and restore Jobs are run by ``make e2e``.
"""

from __future__ import annotations

import json
import time

from test_statefulset_wait import STUCK_LABEL, ModuleRun

MODULE = "kubess.stateful.job_wait"


def job_manifest(name: str, stuck: str | None = None, deadline: int | None = None) -> str:
    labels = {"app": name, **({STUCK_LABEL: stuck} if stuck else {})}
    return json.dumps({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": 0, **({"activeDeadlineSeconds": deadline} if deadline else {}), "template": {
            "metadata": {"labels": labels},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "work", "image": "registry.invalid/kubess/app:1"}]}}},
    })


def run(cluster, tmp_path, check_mode=False, **args) -> dict:
    return ModuleRun(cluster, tmp_path, args, check_mode, module=MODULE).result()


def test_a_failed_job_fails_the_task_naming_it_and_the_reason(cluster, namespace, tmp_path):
    cluster.apply(job_manifest("backup", stuck="Failed"), namespace)
    res = run(cluster, tmp_path, namespace=namespace, names=["backup"], failure="No backup was stored.", timeout=120)
    assert res["_rc"] != 0, res
    first, second, third = res["msg"].splitlines()[:3]
    assert first == "No backup was stored."
    assert second.startswith("The Job backup failed (BackoffLimitExceeded"), res["msg"]
    # Then its pod's container, by name (the simulated node keeps no log, and says so).
    pod = cluster.get_json("pods", "-n", namespace, "-l", "app=backup")["items"][0]["metadata"]["name"]
    assert third.startswith(f"{pod}/work: "), res["msg"]
    assert res["failed_jobs"] == ["backup"]
    assert [(job["name"], job["state"]) for job in res["jobs"]] == [("backup", "Failed")]


def test_a_job_ended_by_its_deadline_is_reported_with_its_events(cluster, namespace, tmp_path):
    # The Job controller deletes the pods of a Job past its deadline: there is no log left, its events say what
    # happened (each pod's events too, where a node's kubelet wrote them).
    cluster.apply(job_manifest("slow", stuck="ImagePullBackOff", deadline=3), namespace)
    res = run(cluster, tmp_path, namespace=namespace, names=["slow"], timeout=120)
    assert res["_rc"] != 0 and res["failed_jobs"] == ["slow"], res
    lines = res["msg"].splitlines()
    assert lines[0].startswith("The Job slow failed (DeadlineExceeded"), res["msg"]
    assert lines[1] == "no pod of it is left; its last events:", res["msg"]
    assert "Job/slow: DeadlineExceeded: Job was active longer than specified deadline" in lines[2:], res["msg"]


def test_returns_when_every_job_has_completed(cluster, namespace, tmp_path):
    for name in ("a", "b"):
        cluster.apply(job_manifest(name), namespace)
    res = run(cluster, tmp_path, namespace=namespace, names=["a", "b"], timeout=120)
    assert res["_rc"] == 0, res
    assert [(job["name"], job["state"], job["reason"]) for job in res["jobs"]] == [
        ("a", "Complete", "CompletionsReached"), ("b", "Complete", "CompletionsReached")]
    for name in ("a", "b"):
        conditions = cluster.get_json("job", name, "-n", namespace)["status"]["conditions"]
        assert {"Complete": "True"}.items() <= {c["type"]: c["status"] for c in conditions}.items()


def test_a_job_that_does_not_end_by_the_deadline_is_named_with_its_pod(cluster, namespace, tmp_path):
    cluster.apply(job_manifest("restore", stuck="ImagePullBackOff"), namespace)
    started = time.monotonic()
    res = run(cluster, tmp_path, namespace=namespace, names=["restore"], timeout=5)
    assert res["_rc"] != 0 and res["job"] == "restore", res
    assert res["msg"].startswith(f"The Job {namespace}/restore had not ended after 5 s; its pods: restore-"), res["msg"]
    assert res["msg"].endswith(": Pending, work waiting (ImagePullBackOff)"), res["msg"]
    # It returned at its deadline (ansible-playbook's own start-up included), not at the end of a longer poll.
    assert time.monotonic() - started < 5 + 20


def test_a_job_that_is_not_there_is_named_at_once(cluster, namespace, tmp_path):
    res = run(cluster, tmp_path, namespace=namespace, names=["nothing"], timeout=300)
    assert res["_rc"] != 0 and res["msg"] == f"The Job {namespace}/nothing does not exist", res


def test_check_mode_waits_for_nothing(cluster, namespace, tmp_path):
    res = run(cluster, tmp_path, check_mode=True, namespace=namespace, names=["nothing"], timeout=300)
    assert res["_rc"] == 0 and res["jobs"] == [] and not res.get("changed"), res
