# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The steps of statefulset_scale_down: one ordinal at a time, the highest first, each pod gone before the next.

For each step the set's ``spec.replicas`` is lowered by one (a merge patch), the pod of the ordinal that
leaves is deleted (so that an unhealthy member, which the controller will not scale down under
``OrderedReady``, does not stall a teardown), and a watch on that pod's name returns when the API no
longer has it: its containers have stopped and its volumes are unmounted.
"""

import time

from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import ModuleFailure
from ansible_collections.kubess.stateful.plugins.module_utils._watch import (
    SetAccess,
    UntilDeadline,
    ns_path,
    watch_one,
)

FIELD_MANAGER = "kubess-scale-down"
MERGE_PATCH = "application/merge-patch+json"


def ordinal_start(sts):
    """The first ordinal of a set (spec.ordinals.start, usually 0)."""
    return int(((sts.get("spec") or {}).get("ordinals") or {}).get("start") or 0)


def steps(current, target):
    """The replica counts to go through, one at a time: 3 -> 0 is [2, 1, 0]."""
    return list(range(current - 1, target - 1, -1))


def describe_pod(pod):
    """Why a pod is still there, in a few words: phase, deletion request, finalizers, node."""
    meta = pod.get("metadata") or {}
    parts = ["phase {0}".format((pod.get("status") or {}).get("phase") or "unknown")]
    if meta.get("deletionTimestamp"):
        parts.append("deletion requested at {0}".format(meta["deletionTimestamp"]))
    if meta.get("finalizers"):
        parts.append("finalizers {0}".format(", ".join(meta["finalizers"])))
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        parts.append("on node {0}".format(node))
    return "; ".join(parts)


class ScaleDown(SetAccess, UntilDeadline):
    """Scale the StatefulSet ``namespace/name`` down to ``replicas``, one ordinal at a time."""

    def __init__(self, api, name, namespace, replicas, deadline, clock=time.monotonic):
        super().__init__(api, name, namespace, clock)
        self.target = replicas
        self.deadline = deadline
        self.sts_path = ns_path("apps/v1", namespace, "statefulsets") + "/" + name
        self.pods_path = ns_path("v1", namespace, "pods")

    def remaining(self):
        return self.deadline - self.clock()

    def read_set(self):
        """The StatefulSet, or None when it does not exist."""
        return self._retry(lambda: self.api.list(self.sts_path), gone_ok=True)

    def run(self, check_mode=False):
        started = self.clock()
        sts = self.read_set()
        if sts is None:
            return dict(changed=False, exists=False, replicas_before=0, replicas=0, stopped=[])
        current = int((sts.get("spec") or {}).get("replicas") or 0)
        start = ordinal_start(sts)
        # Pods above spec.replicas still there: a run stopped at its timeout (or a controller that has not yet acted)
        # left them. Each goes, the highest first, before any lower ordinal.
        leftover = self._pods_above(sts, start + current)
        todo = steps(current, self.target)
        result = dict(changed=bool(todo or leftover), exists=True, replicas_before=current,
                      replicas=min(current, self.target))
        if check_mode:
            result["stopped"] = [dict(ordinal=o, pod="{0}-{1}".format(self.name, o)) for o in leftover] + [
                dict(ordinal=start + r, pod="{0}-{1}".format(self.name, start + r)) for r in todo]
            return result
        stopped = []
        for ordinal in leftover:
            pod = "{0}-{1}".format(self.name, ordinal)
            step_started = self.clock()
            self._delete_pod(pod)
            self._wait_gone(pod, ordinal, current)
            stopped.append(dict(ordinal=ordinal, pod=pod, seconds=round(self.clock() - step_started, 3)))
        for replicas in todo:
            ordinal = start + replicas
            pod = "{0}-{1}".format(self.name, ordinal)
            step_started = self.clock()
            self._retry(lambda n=replicas: self.api.send(
                "PATCH", self.sts_path, body={"spec": {"replicas": n}},
                query=[("fieldManager", FIELD_MANAGER)], content_type=MERGE_PATCH))
            self._delete_pod(pod)
            self._wait_gone(pod, ordinal, replicas)
            stopped.append(dict(ordinal=ordinal, pod=pod, seconds=round(self.clock() - step_started, 3)))
        result["stopped"] = stopped
        result["seconds"] = round(self.clock() - started, 3)
        return result

    def _pods_above(self, sts, first):
        """The ordinals, highest first, of the set's pods at or above ``first`` (by the set's selector)."""
        labels = ((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not labels:
            return []
        query = [("labelSelector", ",".join("{0}={1}".format(k, v) for k, v in sorted(labels.items())))]
        items = self._retry(lambda: self.api.list(self.pods_path, query)).get("items") or []
        prefix = self.name + "-"
        ordinals = []
        for pod in items:
            name = (pod.get("metadata") or {}).get("name") or ""
            suffix = name[len(prefix):] if name.startswith(prefix) else ""
            if suffix.isdigit() and int(suffix) >= first:
                ordinals.append(int(suffix))
        return sorted(ordinals, reverse=True)

    def _delete_pod(self, pod):
        self._retry(lambda: self.api.send("DELETE", self.pods_path + "/" + pod), gone_ok=True)

    def _wait_gone(self, pod, ordinal, replicas):
        """Return once the API has no pod named ``pod``; fail at the deadline naming it and what holds it."""
        gone, last = watch_one(self.api, "pod-" + pod, self.pods_path, pod, self.deadline, lambda obj: obj is None,
                               self.clock)
        if gone:
            return
        raise ModuleFailure(
            "StatefulSet {0}/{1}: pod {2} (ordinal {3}) was still there when the timeout ran out ({4}). A pod stays "
            "Terminating while its node does not confirm that its containers stopped: check the node and the kubelet; "
            "once you know the container has stopped, delete the pod with --grace-period=0 --force and run again. "
            "The set has {5} replicas now.".format(self.namespace, self.name, pod, ordinal, describe_pod(last or {}), replicas),
            ordinal=ordinal, pod=pod,
        )
