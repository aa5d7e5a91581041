# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The steps of statefulset_rollout: the pods of a StatefulSet moved to its update revision one ordinal at a time,
the highest first, through the rolling update's partition.

For each ordinal not yet on the update revision, the partition is lowered to that ordinal (the controller then
replaces that pod, and only that one), and the ordinal wait (StatefulSetWaiter) returns once every ordinal is Ready
and those at or above the partition run the update revision. A pod that is not Ready and not on the update revision
is deleted first: the controller does not replace such a pod by itself under OrderedReady, which is how a rollback
after a bad template stays stuck on a plain StatefulSet. The first ordinal that fails stops the rollout with the
wait's diagnosis and leaves the partition there, so the lower ordinals keep the revision they run.
"""

import time

from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import (
    ApiFailure,
    ModuleFailure,
)
from ansible_collections.kubess.stateful.plugins.module_utils._ordinal import (
    dig,
    label_selector,
    pod_ready,
    pod_revision,
    pods_by_ordinal,
)
from ansible_collections.kubess.stateful.plugins.module_utils._statefulset_waiter import (
    StatefulSetWaiter,
)
from ansible_collections.kubess.stateful.plugins.module_utils._watch import (
    SetAccess,
    ns_path,
    retry,
    watch_one,
)

FIELD_MANAGER = "kubess-rollout"
MERGE_PATCH = "application/merge-patch+json"


def partition_of(sts):
    return int(dig(sts, "spec", "updateStrategy", "rollingUpdate", "partition", default=0) or 0)


def observed(sts):
    return dig(sts, "status", "observedGeneration", default=0) >= dig(sts, "metadata", "generation", default=0)


class Rollout(SetAccess):
    """Move the StatefulSet ``namespace/name`` to its update revision, one ordinal at a time, the highest first."""

    def __init__(self, api, name, namespace, timeout=300, fail_fast=True, controller_stall_timeout=60,
                 clock=time.monotonic, wait_again=True):
        """``wait_again``: when nothing is to be written (every pod on the update revision, partition 0), still wait
        for the pods that are not Ready; False leaves them to a wait that follows (statefulset_rollout's wait)."""
        super().__init__(api, name, namespace, clock)
        self.wait_again = wait_again
        self.timeout = float(timeout)
        self.fail_fast = fail_fast
        self.stall_timeout = controller_stall_timeout
        self.started = clock()
        self.sts_path = ns_path("apps/v1", namespace, "statefulsets") + "/" + name
        self.sts_list_path = ns_path("apps/v1", namespace, "statefulsets")
        self.pods_path = ns_path("v1", namespace, "pods")

    @property
    def ref(self):
        return "{0}/{1}".format(self.namespace, self.name)

    def _retry(self, call, deadline, gone_ok=False):
        """``call()`` again while the API cannot be reached, until ``deadline`` (see ``retry``)."""
        return retry(call, deadline, self.clock, gone_ok=gone_ok)

    # ------------------------------------------------------------------ reads

    def _read_set(self, deadline):
        return self._retry(lambda: self.api.list(self.sts_path), deadline, gone_ok=True)

    def _observed_set(self, deadline):
        """The set once the controller has observed its latest spec (so that status.updateRevision is current)."""
        sts = self._read_set(deadline)
        if sts is None or observed(sts):
            return sts
        seen, last = watch_one(self.api, "sts", self.sts_list_path, self.name, deadline,
                               lambda obj: obj is None or observed(obj), self.clock)
        if seen:
            return last
        sts = last or sts
        raise ModuleFailure(
            "StatefulSet {0}: the controller had not observed generation {1} of the set (status.observedGeneration "
            "{2}) when the timeout ran out, so its update revision is unknown. Check that kube-controller-manager "
            "runs.".format(self.ref, dig(sts, "metadata", "generation"), dig(sts, "status", "observedGeneration")),
            reason="ControllerStalled")

    def _pods(self, sts, deadline):
        """{ordinal: pod} of the set's pods, by its selector."""
        query = [("labelSelector", label_selector(dig(sts, "spec", "selector", default={})))]
        items = self._retry(lambda: self.api.list(self.pods_path, query), deadline).get("items") or []
        return pods_by_ordinal(items, self.name)

    # ------------------------------------------------------------------ the rollout

    def plan(self, sts, pods):
        """The ordinals to take, highest first: those whose pod is not on the update revision, and those at or above
        the partition that run it but are not Ready (a rollout that stopped there: its step is waited for again,
        and the partition is not lowered past it). A missing pod is the controller's to create (from the update
        revision at or above the partition)."""
        start = int(dig(sts, "spec", "ordinals", "start", default=0) or 0)
        replicas = int(dig(sts, "spec", "replicas", default=1))
        update = dig(sts, "status", "updateRevision")
        partition = partition_of(sts)
        return [n for n in range(start + replicas - 1, start - 1, -1)
                if n in pods and (pod_revision(pods[n]) != update
                                  or (n - start >= partition and not pod_ready(pods[n])))]

    def run(self, check_mode=False):
        deadline = self.started + self.timeout
        sts = self._observed_set(deadline) if not check_mode else self._read_set(deadline)
        if sts is None:
            return dict(changed=False, exists=False, rolled=[], partition=None, update_revision=None)
        strategy = dig(sts, "spec", "updateStrategy", "type", default="RollingUpdate") or "RollingUpdate"
        if strategy != "RollingUpdate":
            raise ModuleFailure(
                "StatefulSet {0} uses the {1} update strategy: the controller replaces no pod by itself, and this "
                "module moves pods only through a RollingUpdate partition.".format(self.ref, strategy),
                reason="UpdateStrategy")
        update = dig(sts, "status", "updateRevision")
        start = int(dig(sts, "spec", "ordinals", "start", default=0) or 0)
        pods = self._pods(sts, deadline)
        todo = self.plan(sts, pods)
        # The partition counts from spec.ordinals.start: ordinal n is replaced once the partition is n - start.
        partition = partition_of(sts)
        # A step writes when it lowers the partition or deletes a stuck pod; the end writes when the partition is not 0.
        # Waiting again for an updated pod that is not Ready writes nothing.
        writes = partition != 0 or any(pod_revision(pods[n]) != update for n in todo)
        if not writes and not self.wait_again:
            todo = []
        result = dict(exists=True, update_revision=update, partition_before=partition, changed=writes)
        if check_mode:
            result.update(partition=0 if result["changed"] else partition,
                          would_roll=[dict(ordinal=n, pod="{0}-{1}".format(self.name, n)) for n in todo])
            return result
        rolled = []
        wrote = False
        for ordinal in todo:
            step_started = self.clock()
            step_deadline = step_started + self.timeout
            pod = pods.get(ordinal)
            forced = bool(pod) and pod_revision(pod) != update and not pod_ready(pod)
            failed = dict(stopped_at=ordinal, rolled=rolled, update_revision=update)
            try:
                if ordinal - start < partition:
                    self._set_partition(ordinal - start, step_deadline)
                    partition, wrote = ordinal - start, True
                if forced:
                    self._delete_pod(dig(pod, "metadata", "name"), step_deadline)
                    wrote = True
                StatefulSetWaiter(self.api, self.name, self.namespace, timeout=self.timeout,
                                  fail_fast=self.fail_fast, controller_stall_timeout=self.stall_timeout,
                                  clock=self.clock).wait()
            except ModuleFailure as err:
                raise ModuleFailure(self._stopped_message(ordinal, partition, err.msg, update, rolled),
                                    **dict(err.result, changed=wrote, partition=partition, **failed))
            except ApiFailure as err:
                raise ModuleFailure(
                    self._stopped_message(ordinal, partition, "The API refused a request: {0}{1}".format(
                        err, " (deleting a pod needs delete on pods)" if err.status == 403 else ""), update, rolled),
                    reason="ApiError", changed=wrote, partition=partition, **failed)
            rolled.append(dict(ordinal=ordinal, pod="{0}-{1}".format(self.name, ordinal), forced=forced,
                               seconds=round(self.clock() - step_started, 3)))
            pods = self._pods(sts, step_deadline)
        if partition != 0:
            self._set_partition(0, self.clock() + self.timeout)
        result.update(changed=wrote or result["partition_before"] != 0, rolled=rolled, partition=0,
                      seconds=round(self.clock() - self.started, 3))
        return result

    def _stopped_message(self, ordinal, partition, why, update, rolled):
        done = ", ".join(str(r["ordinal"]) for r in rolled)
        return (
            "The rollout of StatefulSet {0} stopped at ordinal {1} ({2}-{1}); the partition stays at {3}, so the "
            "lower ordinals keep the revision they run{4}. Run again with the previous values to roll the updated "
            "ordinals back, or with a fix to go on. {5}".format(
                self.ref, ordinal, self.name, partition,
                "; ordinals {0} run {1}".format(done, update) if done else "", why))

    def _set_partition(self, value, deadline):
        self._retry(lambda: self.api.send(
            "PATCH", self.sts_path, body={"spec": {"updateStrategy": {"rollingUpdate": {"partition": value}}}},
            query=[("fieldManager", FIELD_MANAGER)], content_type=MERGE_PATCH), deadline)

    def _delete_pod(self, pod, deadline):
        self._retry(lambda: self.api.send("DELETE", self.pods_path + "/" + pod), deadline, gone_ok=True)
