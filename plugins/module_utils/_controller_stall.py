# -*- coding: utf-8 -*-
# Copyright: (c) 2025, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Whether the StatefulSet controller owes the set an action, and since when: pure functions, no clock.

The wait only sees the set and its pods. From them it can tell when the next step is the
controller's (kube-controller-manager's StatefulSet controller), not the kubelet's or the
scheduler's: observe the latest spec, create the next pod, or replace a pod with the update
revision. When the same step stays owed past a threshold, the controller is not acting: it is not
running, cannot reach the API server, or tries and fails (its events say so). Every rule here is
conservative: where the controller may be waiting on purpose (a pod not Ready yet, a pod being
deleted, minReadySeconds), nothing is owed.
"""

from ansible_collections.kubess.stateful.plugins.module_utils._ordinal import (
    dig,
    pod_ready,
    pod_revision,
    wait_target,
)

# Reasons of the StatefulSet's own events that show a controller that acts but whose requests fail.
CONTROLLER_FAILURE_REASONS = frozenset(["FailedCreate", "FailedDelete", "FailedUpdate", "RecreatingFailedPod"])


def _pod_name(sts, pods_by_ord, n):
    return dig(pods_by_ord.get(n), "metadata", "name") or "{0}-{1}".format(dig(sts, "metadata", "name"), n)


def owed_action(sts, pods_by_ord, wait_for_update=True):
    """The step the StatefulSet controller should take next on ``sts``, or None when it owes none.

    ``pods_by_ord`` maps ordinals to the set's pods (see ``_ordinal.pods_by_ordinal``). Owed, in this order:

    - ``observe``: status.observedGeneration is behind metadata.generation;
    - ``create``: no pod for an ordinal of spec.replicas, where with OrderedReady every lower ordinal's pod is
      Ready (the controller creates one pod at a time, each once its predecessors are Running and Ready);
    - ``update``: every pod is Ready and, in a RollingUpdate (with ``wait_for_update``), one at or above the
      partition does not run status.updateRevision: the controller replaces those, highest ordinal first.

    Returns a dict: ``action``, ``ordinal`` and ``pod`` (None for ``observe``), ``detail`` (a clause saying what is
    not done), ``grace`` (seconds the controller may wait on purpose first: spec.minReadySeconds after a pod
    becomes Ready), ``generation``, ``observed_generation``, and ``key`` (the same key means the same step).
    """
    if not sts or dig(sts, "metadata", "deletionTimestamp"):
        return None
    generation = dig(sts, "metadata", "generation", default=0)
    observed = dig(sts, "status", "observedGeneration", default=0)
    base = {"generation": generation, "observed_generation": observed}
    if observed < generation:
        return dict(
            base,
            action="observe",
            ordinal=None,
            pod=None,
            grace=0,
            key=("observe", generation),
            detail="it has not observed generation {0} of the set (status.observedGeneration is {1})".format(generation, observed),
        )
    target = wait_target(sts, None, wait_for_update)
    start, replicas = target["start"], target["replicas"]
    ordered = target["policy"] == "OrderedReady"
    min_ready = int(dig(sts, "spec", "minReadySeconds", default=0) or 0)
    for n in range(start, start + replicas):
        pod = pods_by_ord.get(n)
        if pod is None:
            if ordered and n > start:
                detail = "it has not created pod {0} (ordinal {1}), although every ordinal below it is Ready (OrderedReady)"
            elif ordered:
                detail = "it has not created pod {0} (ordinal {1}), the first ordinal"
            else:
                detail = "it has not created pod {0} (ordinal {1}; Parallel: every pod is created at once)"
            name = _pod_name(sts, pods_by_ord, n)
            return dict(
                base,
                action="create",
                ordinal=n,
                pod=name,
                grace=min_ready if ordered and n > start else 0,
                key=("create", n),
                detail=detail.format(name, n),
            )
        if ordered and not pod_ready(pod):
            return None  # the controller waits for this pod to be Ready: the kubelet's turn
    if not all(pod_ready(pods_by_ord.get(n)) for n in range(start, start + replicas)):
        return None
    update_revision = target["update_revision"]
    if not update_revision:
        return None
    for n in range(start + replicas - 1, start + target["partition"] - 1, -1):
        pod = pods_by_ord[n]
        if pod_revision(pod) != update_revision:
            return dict(
                base,
                action="update",
                ordinal=n,
                pod=_pod_name(sts, pods_by_ord, n),
                grace=min_ready,
                key=("update", n, dig(pod, "metadata", "uid")),
                detail="it has not replaced pod {0} (ordinal {1}, revision {2}) with one of the update revision {3}, "
                "although every pod is Ready".format(_pod_name(sts, pods_by_ord, n), n, pod_revision(pod), update_revision),
            )
    return None


def follow(previous, owed, now):
    """``(owed, since)``: the owed step and when it was first seen owed, carried over from ``previous`` while the
    step stays the same (same key); None when nothing is owed."""
    if owed is None:
        return None
    if previous is not None and previous[0]["key"] == owed["key"]:
        return (owed, previous[1])
    return (owed, now)


def stall_deadline(followed, threshold):
    """When the step ``followed`` (from ``follow``) counts as stalled: its ``since`` plus ``threshold`` plus its grace,
    or None when nothing is owed or ``threshold`` is 0 (the check is off)."""
    if followed is None or not threshold or threshold <= 0:
        return None
    owed, since = followed
    return since + threshold + owed.get("grace", 0)


def is_stalled(followed, threshold, now):
    """True when the step ``followed`` has been owed for longer than ``threshold`` (plus its grace) at ``now``."""
    deadline = stall_deadline(followed, threshold)
    return deadline is not None and now >= deadline


def controller_failing(set_events):
    """The newest of the StatefulSet's events (oldest first) when it says the controller acts but fails, else None."""
    if not set_events:
        return None
    newest = set_events[-1]
    if newest.get("type") == "Warning" and newest.get("reason") in CONTROLLER_FAILURE_REASONS:
        return newest
    return None
