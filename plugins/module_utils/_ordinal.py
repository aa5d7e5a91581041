# -*- coding: utf-8 -*-
# Copyright: (c) 2025, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Readiness of StatefulSet ordinals, as pure functions on plain dicts.

Every function here takes the JSON of API objects (Pods, PersistentVolumeClaims, Events,
StatefulSets) as plain dicts and returns plain values: no client, no clock, no I/O. The
waiting loop lives in ``_statefulset_waiter``, the words of its messages in ``_wait_report``.
"""

import re

POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"

# The scheduler's message for a claim it does not know (yet): persistentvolumeclaim "data-web-1" not found
CLAIM_NOT_FOUND = re.compile(r'persistentvolumeclaim "([^"]+)" not found')
# Container waiting reasons a pod does not recover from without a change by someone.
FATAL_WAITING_REASONS = frozenset(
    [
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
    ]
)

# What to try, by reason: appended to error messages.
HINTS = {
    "ErrImagePull": "check the image name and tag, and that the node can reach the registry (imagePullSecrets)",
    "ImagePullBackOff": "check the image name and tag, and that the node can reach the registry (imagePullSecrets)",
    "InvalidImageName": "fix the image reference in the pod template",
    "ErrImageNeverPull": "the image is not on the node and imagePullPolicy is Never: pull it or change the policy",
    "CrashLoopBackOff": "read the container's logs (kubectl logs --previous) and fix what makes it exit",
    "CreateContainerConfigError": "check that every Secret, ConfigMap and key the pod template refers to exists",
    "CreateContainerError": "check the container's command, mounts and security context",
    "Failed": "read the pod's status message and logs; the controller recreates the pod, fix the cause first",
    "Unschedulable": "check the pod's nodeSelector, affinity, tolerations and resource requests against the nodes",
    "PersistentVolumeClaimPending": (
        "create a PersistentVolume that matches the claim (size, access modes, storageClassName) "
        "or use a StorageClass with a provisioner"
    ),
    "PersistentVolumeClaimLost": "the claim's PersistentVolume is gone: restore it or delete the claim to get a new one",
}


def dig(obj, *path, **kwargs):
    """``obj[path[0]][path[1]]...``, or ``default`` (None) where a key or index is missing or None."""
    cur = obj
    for key in path:
        try:
            cur = cur[key]
        except (KeyError, IndexError, TypeError):
            return kwargs.get("default")
        if cur is None:
            return kwargs.get("default")
    return kwargs.get("default") if cur is None else cur


def _parse_index(text):
    """A non-negative ordinal written the way the controller writes it ("0", "12", never "012")."""
    if not isinstance(text, str) or not text.isdigit() or not text.isascii():
        return None
    if len(text) > 1 and text[0] == "0":
        return None
    return int(text)


def _owner_set(pod):
    """The name of the StatefulSet that controls the pod, or None."""
    for ref in dig(pod, "metadata", "ownerReferences", default=[]):
        if ref.get("controller") and ref.get("kind") == "StatefulSet":
            return ref.get("name")
    return None


def pod_index(pod):
    """The ordinal of a StatefulSet pod without knowing the set: the pod-index label, else the name's suffix."""
    label = _parse_index(dig(pod, "metadata", "labels", POD_INDEX_LABEL))
    if label is not None:
        return label
    match = re.search(r"-(\d+)$", dig(pod, "metadata", "name", default=""))
    return _parse_index(match.group(1)) if match else None


def pod_ordinal(pod, set_name):
    """The ordinal of ``pod`` in the StatefulSet ``set_name``, or None if the pod is not one of its ordinals.

    The name ``<set_name>-<n>`` and the label ``apps.kubernetes.io/pod-index`` must agree when both are
    there; a pod controlled by another StatefulSet is not one of ours whatever its name.
    """
    owner = _owner_set(pod)
    if owner is not None and owner != set_name:
        return None
    name = dig(pod, "metadata", "name", default="")
    prefix = set_name + "-"
    from_name = _parse_index(name[len(prefix):]) if name.startswith(prefix) else None
    from_label = _parse_index(dig(pod, "metadata", "labels", POD_INDEX_LABEL))
    if from_name is not None and from_label is not None and from_name != from_label:
        return None
    if from_name is not None:
        return from_name
    if from_label is not None and owner == set_name:
        return from_label
    return None


def pod_condition(pod, cond_type):
    """The pod's condition of type ``cond_type`` (a dict), or None."""
    for cond in dig(pod, "status", "conditions", default=[]):
        if cond.get("type") == cond_type:
            return cond
    return None


def pod_revision(pod):
    """The controller revision the pod was created from (label controller-revision-hash), or None."""
    return dig(pod, "metadata", "labels", REVISION_LABEL)


def pod_ready(pod):
    """True when the pod is Running, its Ready condition is True and it is not being deleted."""
    if not pod or dig(pod, "metadata", "deletionTimestamp"):
        return False
    if dig(pod, "status", "phase") != "Running":
        return False
    cond = pod_condition(pod, "Ready")
    return bool(cond) and cond.get("status") == "True"


def ordinal_ready(pod, update_revision=None, partition=0, ordinal=None, start=0):
    """True when the ordinal's pod counts as Ready.

    With ``update_revision`` the pod must also carry that revision, except ordinals whose index
    (ordinal - ``start``, as the controller counts) is below ``partition``: a partitioned rolling
    update leaves those on the old revision, so they only need to be Ready.
    """
    if not pod_ready(pod):
        return False
    if not update_revision:
        return True
    index = ordinal if ordinal is not None else pod_index(pod)
    if index is not None and index - start < (partition or 0):
        return True
    return pod_revision(pod) == update_revision


def label_selector(selector):
    """A LabelSelector (dict with matchLabels / matchExpressions) as the string the API's labelSelector takes."""
    parts = []
    for key, value in sorted((selector or {}).get("matchLabels", {}).items()):
        parts.append("{0}={1}".format(key, value))
    for expr in (selector or {}).get("matchExpressions", []) or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append("{0} in ({1})".format(key, ",".join(values)))
        elif op == "NotIn":
            parts.append("{0} notin ({1})".format(key, ",".join(values)))
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append("!" + key)
        else:
            raise ValueError("unsupported label selector operator {0!r} for key {1!r}".format(op, key))
    return ",".join(parts)


def wait_target(sts, replicas=None, wait_for_update=True):
    """What waiting on ``sts`` means: a dict of replicas, start, update_revision, partition, policy, selector, observed.

    ``replicas`` overrides the set's spec.replicas (default 1, as the API defaults it). The update revision
    is required only with ``wait_for_update`` and the RollingUpdate strategy (with OnDelete the controller
    replaces no pod by itself). ``observed`` is False while the controller has not yet seen the latest spec,
    when status.updateRevision may still name the previous template.
    """
    spec = sts.get("spec") or {}
    status = sts.get("status") or {}
    strategy = spec.get("updateStrategy") or {}
    strategy_type = strategy.get("type") or "RollingUpdate"
    partition = dig(strategy, "rollingUpdate", "partition", default=0) if strategy_type == "RollingUpdate" else 0
    update_revision = status.get("updateRevision") if wait_for_update and strategy_type == "RollingUpdate" else None
    generation = dig(sts, "metadata", "generation", default=0)
    observed = status.get("observedGeneration", 0) >= generation
    return {
        "replicas": int(spec.get("replicas", 1) if replicas is None else replicas),
        "start": int(dig(spec, "ordinals", "start", default=0)),
        "update_revision": update_revision or None,
        "partition": int(partition or 0),
        "update_strategy": strategy_type,
        "policy": spec.get("podManagementPolicy") or "OrderedReady",
        "selector": label_selector(spec.get("selector")),
        "observed": observed,
    }


def pods_by_ordinal(pods, set_name):
    """{ordinal: pod} for the pods that are ordinals of ``set_name``."""
    out = {}
    for pod in pods:
        n = pod_ordinal(pod, set_name)
        if n is not None:
            out[n] = pod
    return out


def unready_ordinals(pods_by_ord, replicas, update_revision=None, partition=0, start=0):
    """The ordinals in [start, start + replicas) whose pod is missing or does not count as Ready, ascending."""
    return [
        n
        for n in range(start, start + replicas)
        if not ordinal_ready(pods_by_ord.get(n), update_revision, partition, ordinal=n, start=start)
    ]


def first_unready_ordinal(pods_by_ord, replicas, update_revision=None, partition=0, start=0):
    """The lowest ordinal in [start, start + replicas) that is not Ready yet, or None when all are."""
    for n in range(start, start + replicas):
        if not ordinal_ready(pods_by_ord.get(n), update_revision, partition, ordinal=n, start=start):
            return n
    return None


def pod_claim_names(pod):
    """The names of the PersistentVolumeClaims the pod mounts, in volume order."""
    names = []
    for vol in dig(pod, "spec", "volumes", default=[]):
        claim = dig(vol, "persistentVolumeClaim", "claimName")
        if claim:
            names.append(claim)
    return names


def pod_unscheduled(pod):
    """True when the scheduler has tried the pod and could not place it (PodScheduled=False)."""
    cond = pod_condition(pod, "PodScheduled")
    return bool(cond) and cond.get("status") == "False" and not dig(pod, "spec", "nodeName")


def _event_time(ev):
    return (
        ev.get("lastTimestamp")
        or dig(ev, "series", "lastObservedTime")
        or ev.get("eventTime")
        or ev.get("firstTimestamp")
        or dig(ev, "metadata", "creationTimestamp")
        or ""
    )


def sort_events(events):
    """Events oldest first (by last occurrence)."""
    return sorted(events or [], key=lambda ev: (_event_time(ev), dig(ev, "metadata", "resourceVersion", default="")))


def events_for(events, kind, name, uid=None):
    """The events about the object ``kind``/``name`` (and ``uid`` when both sides know it), oldest first."""
    out = []
    for ev in events or []:
        obj = ev.get("involvedObject") or ev.get("regarding") or {}
        if obj.get("kind") != kind or obj.get("name") != name:
            continue
        if uid and obj.get("uid") and obj.get("uid") != uid:
            continue
        out.append(ev)
    return sort_events(out)


def format_event(ev):
    """One line for an event: time, type, reason, message, count."""
    count = ev.get("count") or dig(ev, "series", "count") or 1
    text = "{0} {1} {2}: {3}".format(
        _event_time(ev) or "-", ev.get("type") or "Normal", ev.get("reason") or "-", (ev.get("message") or "").strip()
    )
    if count > 1:
        text += " (x{0})".format(count)
    return text


def last_events(events, limit=5):
    """The ``limit`` newest events as lines, newest last."""
    ordered = sort_events(events)
    return [format_event(ev) for ev in ordered[-limit:]] if limit else []


_PVC_FATAL_EVENT_REASONS = ("FailedBinding",)


def _pvc_fatal_event(pvc, events):
    """The event that says the Pending claim will not get a volume by itself, or None."""
    name = dig(pvc, "metadata", "name")
    uid = dig(pvc, "metadata", "uid")
    for ev in reversed(events_for(events, "PersistentVolumeClaim", name, uid)):
        reason = ev.get("reason")
        message = ev.get("message") or ""
        if reason in _PVC_FATAL_EVENT_REASONS:
            return ev
        if reason == "ProvisioningFailed" and (
            ("storageclass" in message.lower() and "not found" in message) or "no volume plugin matched" in message
        ):
            return ev
    return None


def _container_statuses(pod):
    return dig(pod, "status", "initContainerStatuses", default=[]) + dig(pod, "status", "containerStatuses", default=[])


def stuck_reason(pod, pvcs=None, events=None):
    """Why ``pod`` cannot become Ready on its own, as (reason, message), or None if it may still get there.

    ``pvcs`` are the PersistentVolumeClaims the pod mounts (dicts; leave out what is not known yet),
    ``events`` the events known about them. Stuck means: phase Failed; a container waiting with one of
    FATAL_WAITING_REASONS; a claim Pending with an event saying no volume will come (FailedBinding, a
    StorageClass that does not exist, a provisioner no volume plugin serves), or Lost; PodScheduled=False with reason Unschedulable, unless
    the scheduler only waits for claims that may still be bound.
    """
    if not pod or dig(pod, "metadata", "deletionTimestamp") or pod_ready(pod):
        return None
    status = pod.get("status") or {}
    if status.get("phase") == "Failed":
        details = [status.get("message") or status.get("reason") or ""]
        for cs in _container_statuses(pod):
            term = dig(cs, "state", "terminated")
            if term:
                details.append(
                    "container {0} terminated ({1}, exit code {2}){3}".format(
                        cs.get("name"),
                        term.get("reason") or "-",
                        term.get("exitCode"),
                        ": " + term["message"] if term.get("message") else "",
                    )
                )
        return ("Failed", "pod phase is Failed: " + "; ".join(d for d in details if d))
    for cs in _container_statuses(pod):
        waiting = dig(cs, "state", "waiting")
        if waiting and waiting.get("reason") in FATAL_WAITING_REASONS:
            message = "container {0} is waiting: {1}".format(cs.get("name"), waiting.get("reason"))
            if waiting.get("message"):
                message += ": " + waiting["message"]
            if cs.get("restartCount"):
                message += " (restarts: {0})".format(cs["restartCount"])
            return (waiting["reason"], message)
    claims = set(pod_claim_names(pod))
    for pvc in pvcs or []:
        name = dig(pvc, "metadata", "name")
        if name not in claims:
            continue
        phase = dig(pvc, "status", "phase", default="Pending")
        if phase == "Lost":
            return ("PersistentVolumeClaimLost", "PersistentVolumeClaim {0} is Lost: its volume no longer exists".format(name))
        if phase == "Pending":
            ev = _pvc_fatal_event(pvc, events)
            if ev is not None:
                return (
                    "PersistentVolumeClaimPending",
                    "PersistentVolumeClaim {0} is Pending (storageClassName {1!r}): {2}: {3}".format(
                        name, dig(pvc, "spec", "storageClassName", default=""), ev.get("reason"), (ev.get("message") or "").strip()
                    ),
                )
    sched = pod_condition(pod, "PodScheduled")
    if sched and sched.get("status") == "False" and sched.get("reason") == "Unschedulable":
        message = sched.get("message") or ""
        if "unbound immediate PersistentVolumeClaims" in message:
            # The scheduler waits for the claims: they decide (above), provisioning may still be under way.
            return None
        missing = set(CLAIM_NOT_FOUND.findall(message))
        if missing and missing <= claims:
            # The pod's own claim, which the StatefulSet controller makes just before the pod, not yet in the
            # scheduler's cache: it schedules the pod again once it sees the claim.
            return None
        return ("Unschedulable", message or "the scheduler found no node for the pod")
    return None


def describe_pod(pod):
    """The pod's state in one line: phase, node, conditions, container states."""
    if not pod:
        return "the pod does not exist"
    status = pod.get("status") or {}
    parts = ["phase {0}".format(status.get("phase") or "Unknown")]
    if dig(pod, "metadata", "deletionTimestamp"):
        parts.append("being deleted")
    node = dig(pod, "spec", "nodeName")
    parts.append("node {0}".format(node) if node else "not scheduled")
    revision = pod_revision(pod)
    if revision:
        parts.append("revision {0}".format(revision))
    conds = []
    for cond in status.get("conditions") or []:
        text = "{0}={1}".format(cond.get("type"), cond.get("status"))
        extra = " ".join(x for x in (cond.get("reason"), cond.get("message")) if x)
        if extra and cond.get("status") != "True":
            text += " ({0})".format(extra)
        conds.append(text)
    if conds:
        parts.append("conditions: " + ", ".join(conds))
    states = []
    for cs in _container_statuses(pod):
        state = cs.get("state") or {}
        if "running" in state:
            text = "running"
        elif "waiting" in state:
            w = state["waiting"] or {}
            text = "waiting ({0})".format(": ".join(x for x in (w.get("reason"), w.get("message")) if x) or "-")
        elif "terminated" in state:
            t = state["terminated"] or {}
            text = "terminated ({0}, exit code {1})".format(t.get("reason") or "-", t.get("exitCode"))
        else:
            text = "unknown"
        text = "{0} {1}, ready={2}".format(cs.get("name"), text, bool(cs.get("ready")))
        if cs.get("restartCount"):
            text += ", restarts={0}".format(cs["restartCount"])
        states.append(text)
    if states:
        parts.append("containers: " + "; ".join(states))
    return "; ".join(parts)
