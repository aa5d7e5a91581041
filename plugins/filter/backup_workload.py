# Copyright (c) kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way the roles wrap a backup pod: a CronJob on a schedule, or a Job taken now.

Each role renders only what its backup pod does (a Job spec: the pod template); this filter adds what every role's
backup Jobs have in common and the CronJob or Job around it, so that the etcd, pxc and mysql_replication backups are
scheduled, kept and named the same way. The documentation is in backup_workload.yml beside this file.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

# A backup the CronJob missed by more than this is skipped, not taken late; the last three Jobs of each outcome stay.
CRONJOB_SPEC = {"concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 3600, "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3}
FILE_ANNOTATION = "kubess.io/backup-file"


def _merged(base, over):
    """``base`` with ``over`` laid on it: mappings merged key by key, any other value of ``over`` taking the place."""
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        out = dict(base)
        for key, value in over.items():
            out[key] = _merged(base[key], value) if key in base else value
        return out
    return over


def backup_workload(job_spec, kind, name, namespace, labels, common=None, schedule="", time_zone="Etc/UTC", file=""):
    """The CronJob (``kind`` CronJob, on ``schedule`` in ``time_zone``) or the Job (``kind`` Job, its backup's name
    ``file`` in an annotation) named ``name`` in ``namespace``, whose Jobs run ``job_spec`` with ``common`` laid on it;
    ``labels`` on the object and on its Jobs."""
    if not isinstance(job_spec, Mapping) or not isinstance(job_spec.get("template"), Mapping):
        raise AnsibleFilterError("backup_workload: the input must be a Job spec with a pod template")
    if not name or not namespace:
        raise AnsibleFilterError("backup_workload: a name and a namespace are needed")
    spec = _merged(dict(job_spec), dict(common or {}))
    metadata = {"name": str(name), "namespace": str(namespace), "labels": dict(labels or {})}
    if kind == "Job":
        if not file:
            raise AnsibleFilterError(f"backup_workload: the Job {name} needs the name of the backup it stores (file)")
        metadata["annotations"] = {FILE_ANNOTATION: str(file)}
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}
    if kind == "CronJob":
        if not schedule:
            raise AnsibleFilterError(f"backup_workload: the CronJob {name} needs a schedule")
        cron = {"schedule": str(schedule), "timeZone": str(time_zone), **CRONJOB_SPEC,
                "jobTemplate": {"metadata": {"labels": dict(labels or {})}, "spec": spec}}
        return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": metadata, "spec": cron}
    raise AnsibleFilterError(f"backup_workload: kind must be CronJob or Job, got {kind!r}")


class FilterModule:
    """kubess.stateful backup CronJobs and Jobs."""

    def filters(self):
        return {"backup_workload": backup_workload}
