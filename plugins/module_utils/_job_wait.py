# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Waiting for a role's Jobs to end (kubess.stateful.job_wait): each Job is watched until its Complete or Failed
condition; a failed one is reported with the end of its last pod's log, a Job still running at the deadline with
its pods' states."""

import time

from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import ApiFailure, ModuleFailure, TransientApiError
from ansible_collections.kubess.stateful.plugins.module_utils._watch import UntilDeadline, ns_path, watch_one

JOBS = ns_path("batch/v1", "{0}", "jobs")
PODS = ns_path("v1", "{0}", "pods")
LOG_TIMEOUT = 15


def end_of(job):
    """``("Complete" | "Failed", reason, message)`` when the Job has ended, else None. A Job that is gone has not
    ended: it was deleted, and is reported as such by the waiter."""
    for cond in ((job or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return cond["type"], cond.get("reason") or "", cond.get("message") or ""
    return None


def pod_state(pod):
    """One pod's state in a few words: its phase, and each container that waits or ended with an error."""
    status = pod.get("status") or {}
    words = [status.get("phase") or "Unknown"]
    for cstat in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        state = cstat.get("state") or {}
        waiting, ended = state.get("waiting"), state.get("terminated")
        if waiting:
            words.append("{0} waiting ({1})".format(cstat.get("name"), waiting.get("reason") or "no reason"))
        elif ended and ended.get("exitCode"):
            words.append("{0} exited {1}".format(cstat.get("name"), ended.get("exitCode")))
    return ", ".join(words)


def ran(pod):
    """The names of the pod's containers that have started (init containers first), in their order."""
    status = pod.get("status") or {}
    out = []
    for cstat in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        state = cstat.get("state") or {}
        if state.get("running") or state.get("terminated"):
            out.append(cstat.get("name"))
    return out


class JobWait(UntilDeadline):
    """Wait until every Job of ``names`` in ``namespace`` has ended; fail, saying ``failure`` first, when one failed."""

    def __init__(self, api, namespace, names, failure, log_lines, deadline, timeout, clock=time.monotonic):
        self.api = api
        self.namespace = namespace
        self.names = list(names)
        self.failure = failure
        self.log_lines = log_lines
        self.deadline = deadline
        self.timeout = timeout
        self.clock = clock

    def pods(self, job):
        """The Job's pods, the newest last (by the Job's own selector, which its controller sets)."""
        labels = ((job.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not labels:
            return []
        query = [("labelSelector", ",".join("{0}={1}".format(k, v) for k, v in sorted(labels.items())))]
        items = self._retry(lambda: self.api.list(PODS.format(self.namespace), query)).get("items") or []
        return sorted(items, key=lambda p: ((p.get("metadata") or {}).get("creationTimestamp") or "",
                                            (p.get("metadata") or {}).get("name") or ""))

    def log_tail(self, job):
        """The end of the log of the Job's newest pod: ``log_lines`` lines, each container's marked with its name."""
        pods = self.pods(job)
        if not pods:
            return "no pod of it is left to read a log from"
        pod = pods[-1]
        name = pod["metadata"]["name"]
        lines = []
        for container in ran(pod):
            path = "{0}/{1}/log".format(PODS.format(self.namespace), name)
            query = [("container", container), ("tailLines", self.log_lines)]
            try:
                # One try, not retried until the deadline: the failure is reported with or without its log.
                text = self.api.text(path, query, timeout=LOG_TIMEOUT)
            except (ApiFailure, TransientApiError) as err:
                lines.append("{0}/{1}: its log could not be read ({2})".format(name, container, err))
                continue
            lines.extend("{0}/{1}: {2}".format(name, container, line) for line in text.splitlines() if line.strip())
        if not lines:
            return "pod {0} ({1}) wrote nothing".format(name, pod_state(pod))
        return "\n".join(lines[-self.log_lines:])

    def wait_one(self, name):
        """The Job ``name`` once it has ended; a ModuleFailure when it does not exist, is deleted first, or has not
        ended at the deadline."""
        path = JOBS.format(self.namespace)
        seen = []

        def ended(obj):
            if obj is not None:
                seen.append(obj)
            return obj is None or end_of(obj) is not None

        done, job = watch_one(self.api, "job/" + name, path, name, self.deadline, ended, self.clock)
        if not seen:
            raise ModuleFailure("The Job {0}/{1} {2}".format(
                self.namespace, name, "does not exist" if done else "could not be read in {0} s".format(self.timeout)),
                job=name)
        if done and job is None:
            raise ModuleFailure("The Job {0}/{1} was deleted before it ended".format(self.namespace, name), job=name)
        if not done:
            states = ["{0}: {1}".format(p["metadata"]["name"], pod_state(p)) for p in self.pods(seen[-1])]
            raise ModuleFailure(
                "The Job {0}/{1} had not ended after {2} s; its pods: {3}".format(
                    self.namespace, name, self.timeout, "; ".join(states) or "none"), job=name)
        return job

    def run(self, check_mode=False):
        started = self.clock()
        if check_mode:
            # The Jobs were applied as a dry run: there is nothing to wait for.
            return dict(changed=False, jobs=[], seconds=0.0)
        ended = [(name, self.wait_one(name)) for name in self.names]
        jobs, texts = [], []
        for name, job in ended:
            kind, reason, message = end_of(job)
            jobs.append(dict(name=name, succeeded=kind == "Complete", reason=reason, message=message))
            if kind != "Complete":
                why = ": ".join(part for part in (reason, message) if part)
                texts.append("The Job {0} failed{1}:\n{2}".format(
                    name, " ({0})".format(why) if why else "", self.log_tail(job)))
        if texts:
            raise ModuleFailure("\n".join(([self.failure] if self.failure else []) + texts), jobs=jobs,
                                failed=[entry["name"] for entry in jobs if not entry["succeeded"]])
        return dict(changed=False, jobs=jobs, seconds=round(self.clock() - started, 3))
