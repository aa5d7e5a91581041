"""kubess.stateful.backup_workload: a backup pod's Job spec wrapped in the CronJob or the Job every role makes."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubess.stateful.plugins.filter.backup_workload import backup_workload

SPEC = {"template": {"metadata": {"labels": {"a": "b"}},
                     "spec": {"containers": [{"name": "store"}], "securityContext": {"runAsUser": 1}}}}
COMMON = {"backoffLimit": 0, "activeDeadlineSeconds": 60,
          "template": {"spec": {"restartPolicy": "Never", "securityContext": {"runAsUser": 999, "runAsNonRoot": True}}}}
LABELS = {"app.kubernetes.io/name": "x-backup"}


def test_a_cronjob_runs_the_spec_with_what_every_job_has_on_its_schedule():
    cron = backup_workload(SPEC, "CronJob", "x-backup", "db", LABELS, COMMON, schedule="30 2 * * *",
                           time_zone="Europe/Paris")
    assert cron["apiVersion"] == "batch/v1" and cron["kind"] == "CronJob"
    assert cron["metadata"] == {"name": "x-backup", "namespace": "db", "labels": LABELS}
    spec = cron["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == ("30 2 * * *", "Europe/Paris", "Forbid")
    assert (spec["startingDeadlineSeconds"], spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == \
        (3600, 3, 3)
    assert spec["jobTemplate"]["metadata"] == {"labels": LABELS}
    job = spec["jobTemplate"]["spec"]
    assert (job["backoffLimit"], job["activeDeadlineSeconds"]) == (0, 60)
    pod = job["template"]["spec"]
    # Mappings merged key by key, what is common laid on the role's own; the role's lists kept.
    assert pod["securityContext"] == {"runAsUser": 999, "runAsNonRoot": True}
    assert pod["restartPolicy"] == "Never" and pod["containers"] == [{"name": "store"}]
    assert job["template"]["metadata"] == {"labels": {"a": "b"}}
    assert SPEC["template"]["spec"]["securityContext"] == {"runAsUser": 1}, "the input is left as it was"


def test_a_job_says_the_backup_it_stores():
    job = backup_workload(SPEC, "Job", "x-backup-1796352300", "db", LABELS, COMMON, file="db-x-20261204T024500Z.db")
    assert job["kind"] == "Job" and job["metadata"]["name"] == "x-backup-1796352300"
    assert job["metadata"]["annotations"] == {"kubess.io/backup-file": "db-x-20261204T024500Z.db"}
    assert job["spec"]["backoffLimit"] == 0 and "schedule" not in job["spec"]


@pytest.mark.parametrize("args, kwargs, fragment", [
    ((SPEC, "Deployment", "x", "db", LABELS), {}, "kind must be CronJob or Job"),
    ((SPEC, "CronJob", "x", "db", LABELS), {}, "needs a schedule"),
    ((SPEC, "Job", "x", "db", LABELS), {}, "needs the name of the backup"),
    (({"containers": []}, "Job", "x", "db", LABELS), {"file": "f"}, "a Job spec with a pod template"),
    ((SPEC, "Job", "", "db", LABELS), {"file": "f"}, "a name and a namespace"),
])
def test_what_cannot_make_a_workload_is_refused(args, kwargs, fragment):
    with pytest.raises(AnsibleFilterError, match=fragment):
        backup_workload(*args, **kwargs)
