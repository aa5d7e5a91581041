# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Waiting for a role's Jobs to end (kubess.stateful.job_wait): every Job is watched at once until each has its
Complete condition, or one has its Failed condition; a failed one is reported with the end of its newest pod's log
(or, its pods gone, with the events of the Job and its pods), a Job still running at the deadline with its pods'
states."""

import queue
import time

from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import ApiFailure, ModuleFailure, TransientApiError
from ansible_collections.kubess.stateful.plugins.module_utils._ordinal import sort_events
from ansible_collections.kubess.stateful.plugins.module_utils._watch import (
    FATAL,
    RESYNC,
    SYNC,
    UntilDeadline,
    WatchStream,
    ns_path,
)

JOBS = ns_path("batch/v1", "{0}", "jobs")
PODS = ns_path("v1", "{0}", "pods")
EVENTS = ns_path("v1", "{0}", "events")
LOG_TIMEOUT = 15
EVENT_LINES = 8
# The options of a module that waits for Jobs (doc fragment kubess.stateful.job_wait).
WAIT_OPTIONS = dict(
    namespace=dict(type="str", required=True),
    failure=dict(type="str", default=""),
    log_lines=dict(type="int", default=25),
    timeout=dict(type="int", default=600),
)


def wait_option_problem(params):
    """The first of the wait's options that is wrong, as a message, or None."""
    if params["timeout"] <= 0:
        return "timeout must be a positive number of seconds, got {0}".format(params["timeout"])
    if params["log_lines"] <= 0:
        return "log_lines must be a positive number, got {0}".format(params["log_lines"])
    if not params["namespace"].strip():
        return "namespace must not be empty"
    return None


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


def about_job(event, name):
    """Whether ``event`` is about the Job ``name`` or one of its pods (named after it)."""
    obj = event.get("involvedObject") or {}
    return (obj.get("kind"), obj.get("name")) == ("Job", name) or (
        obj.get("kind") == "Pod" and (obj.get("name") or "").startswith(name + "-"))


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
            return self.events_of(job["metadata"]["name"])
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

    def events_of(self, name):
        """The last events of the Job ``name`` and of its pods (by their names), for a Job whose pods are gone (its
        controller deletes them at its deadline)."""
        try:
            items = self.api.list(EVENTS.format(self.namespace), timeout=LOG_TIMEOUT).get("items") or []
        except (ApiFailure, TransientApiError) as err:
            return "no pod of it is left, and its events could not be read ({0})".format(err)
        mine = [event for event in items if about_job(event, name)]
        if not mine:
            return "no pod of it is left to read a log from, and no event of it"
        lines = ["{0}/{1}: {2}: {3}".format(event["involvedObject"]["kind"], event["involvedObject"]["name"],
                                            event.get("reason") or "", (event.get("message") or "").strip())
                 for event in sort_events(mine)[-EVENT_LINES:]]
        return "no pod of it is left; its last events:\n" + "\n".join(lines)

    def watch_all(self):
        """Each Job's last state, once every Job has ended or one has failed, or at the deadline: {name: object}.
        A Job that does not exist, is deleted, or is replaced by another of its name is a ModuleFailure."""
        path = JOBS.format(self.namespace)
        events = queue.Queue()
        streams = [WatchStream(self.api, "job/" + name, path, [("fieldSelector", "metadata.name=" + name)],
                               lambda _stream, typ, payload, n=name: events.put((n, typ, payload)),
                               lambda: self.deadline - self.clock()) for name in self.names]
        last, uids = {}, {}
        for stream in streams:
            stream.start()
        try:
            while True:
                ended = [end_of(last.get(name)) for name in self.names]
                if all(ended) or any(end and end[0] == "Failed" for end in ended):
                    return last
                left = self.deadline - self.clock()
                if left <= 0:
                    return last
                try:
                    name, typ, payload = events.get(timeout=left)
                except queue.Empty:
                    return last
                if typ == FATAL:
                    raise payload
                if typ in (SYNC, RESYNC):
                    obj = payload[0] if payload else None
                elif typ in ("ADDED", "MODIFIED", "DELETED"):
                    obj = None if typ == "DELETED" else payload
                else:
                    continue
                if end_of(last.get(name)):
                    continue
                if obj is None:
                    if name not in last and typ == SYNC:
                        raise ModuleFailure("The Job {0}/{1} does not exist".format(self.namespace, name), job=name)
                    if name in last:
                        raise ModuleFailure("The Job {0}/{1} was deleted before it ended".format(self.namespace, name),
                                            job=name)
                    continue
                uid = (obj.get("metadata") or {}).get("uid")
                if uids.setdefault(name, uid) != uid:
                    raise ModuleFailure("The Job {0}/{1} was deleted and made again before it ended".format(
                        self.namespace, name), job=name)
                last[name] = obj
        finally:
            for stream in streams:
                stream.stop()
            for stream in streams:
                stream.join(5)

    def run(self, check_mode=False):
        started = self.clock()
        if check_mode:
            # The Jobs were applied as a dry run: there is nothing to wait for.
            return dict(changed=False, jobs=[], seconds=0.0)
        last = self.watch_all()
        if any(end and end[0] == "Failed" for end in map(end_of, last.values())):
            # One failed: the others as they stand now (each watch may not have delivered them yet), so that every
            # Job failed by then is reported.
            for name in self.names:
                if not end_of(last.get(name)):
                    found = self._retry(lambda n=name: self.api.list(
                        JOBS.format(self.namespace), [("fieldSelector", "metadata.name=" + n)])).get("items") or []
                    last.update({name: found[0]} if found else {})
        jobs, texts, running = [], [], []
        for name in self.names:
            end = end_of(last.get(name))
            kind, reason, message = end or ("Running", "", "")
            jobs.append(dict(name=name, state=kind, reason=reason, message=message))
            if kind == "Failed":
                why = ": ".join(part for part in (reason, message) if part)
                texts.append("The Job {0} failed{1}:\n{2}".format(
                    name, " ({0})".format(why) if why else "", self.log_tail(last[name])))
            elif kind == "Running":
                running.append(name)
        if texts:
            raise ModuleFailure("\n".join(([self.failure] if self.failure else []) + texts), jobs=jobs,
                                failed_jobs=[entry["name"] for entry in jobs if entry["state"] == "Failed"])
        if running:
            name = running[0]
            if name not in last:
                raise ModuleFailure("The Job {0}/{1} could not be read in {2} s".format(
                    self.namespace, name, self.timeout), job=name, jobs=jobs)
            states = ["{0}: {1}".format(p["metadata"]["name"], pod_state(p)) for p in self.pods(last[name])]
            raise ModuleFailure(
                "The Job {0}/{1} had not ended after {2} s; its pods: {3}".format(
                    self.namespace, name, self.timeout, "; ".join(states) or "none"), job=name, jobs=jobs)
        return dict(changed=False, jobs=jobs, seconds=round(self.clock() - started, 3))
