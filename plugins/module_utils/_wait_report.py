# -*- coding: utf-8 -*-
# Copyright: (c) 2025, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What statefulset_wait says: the per-ordinal result entries and every message, from plain values.

No client, no clock: the waiter gathers the facts (the set, the pods, the events it read, times) and
these functions put them into words. Every failure message says what failed, where (the set, the
ordinal, the pod), why, and what to try.
"""

import datetime

from ansible_collections.kubess.stateful.plugins.module_utils._ordinal import (
    HINTS,
    dig,
    ordinal_ready,
    pod_revision,
)


def clause(text):
    """``text`` without its closing period, to be followed by one."""
    return (text or "").strip().rstrip(".")


def joined_events(lines):
    return clause(" | ".join(lines)) if lines else "none"


def utc_iso(epoch):
    """Epoch seconds as an ISO 8601 UTC time to the second, as Kubernetes writes its timestamps."""
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------- result entries


def ordinal_entries(set_name, target, by_ord, ready_at):
    """One result entry per ordinal waited for. ``ready_at(pod)``: seconds into the wait the pod was seen Ready, or None."""
    if target is None:
        return []
    out = []
    for n in range(target["start"], target["start"] + target["replicas"]):
        pod = by_ord.get(n)
        ready = ordinal_ready(pod, target["update_revision"], target["partition"], ordinal=n, start=target["start"])
        out.append(
            {
                "ordinal": n,
                "pod": dig(pod, "metadata", "name") if pod else "{0}-{1}".format(set_name, n),
                "ready": ready,
                "ready_seconds": ready_at(pod) if ready and pod else None,
                "uid": dig(pod, "metadata", "uid"),
                "revision": pod_revision(pod) if pod else None,
                "phase": dig(pod, "status", "phase"),
                "node": dig(pod, "spec", "nodeName"),
            }
        )
    return out


# ---------------------------------------------------------------------- the set or the API


def missing_message(ref):
    return (
        "StatefulSet {0} not found. Check the name and namespace, create it first (for example with "
        "kubernetes.core.k8s), or set wait_for_set: true to wait until it appears.".format(ref)
    )


def deleted_message(ref):
    return (
        "StatefulSet {0} was deleted while waiting for its ordinals. "
        "Set wait_for_set: true to wait for it to be created again.".format(ref)
    )


def empty_selector_message(ref):
    return "StatefulSet {0} has an empty spec.selector: its pods cannot be found.".format(ref)


def api_failure_message(ref, namespace, what, err):
    hint = ""
    if err.status in (401, 403):
        hint = (
            " The credentials need get, list and watch on statefulsets (apps), pods, "
            "persistentvolumeclaims and events in namespace {0}.".format(namespace)
        )
    return "Reading {0} for StatefulSet {1} failed: HTTP {2}: {3}.{4}".format(what, ref, err.status, err.message, hint)


def watch_failed_message(ref, what, err):
    return "Watching the {0} of StatefulSet {1} failed: {2}: {3}".format(what, ref, type(err).__name__, err)


def unreachable_message(ref, err):
    return (
        "Could not reach the Kubernetes API to read StatefulSet {0}: {1}. "
        "Check that the API server is up and the kubeconfig/context points at it.".format(ref, err)
    )


def events_not_read(kind, name, err=None):
    if err is None:
        return "(events of {0} {1} not read: the API server is unreachable)".format(kind, name)
    return "(events of {0} {1} could not be read: {2})".format(kind, name, err)


# ---------------------------------------------------------------------- a stuck ordinal


def stuck_message(ref, namespace, n, pod, reason, message, state, events):
    hint = HINTS.get(reason, "kubectl describe the pod")
    msg = (
        "StatefulSet {ref}: ordinal {n} (pod {pod}) cannot become Ready: {reason}: {message}. "
        "Pod state: {state}. Last events (newest last): {events}. "
        "Try: {hint}; kubectl -n {ns} describe pod {pod}."
    ).format(
        ref=ref, n=n, pod=pod, reason=reason, message=clause(message), state=clause(state),
        events=joined_events(events), hint=hint, ns=namespace,
    )
    return msg, hint


# ---------------------------------------------------------------------- a silent controller


def stall_fields(followed, started, now, wall_now, threshold):
    """The ``stall`` result field: the step the controller owes, since when (ISO time and seconds into the wait)."""
    owed, since = followed
    return {
        "action": owed["action"],
        "ordinal": owed["ordinal"],
        "pod": owed["pod"],
        "detail": owed["detail"],
        "since": utc_iso(wall_now - (now - since)),
        "since_seconds": round(since - started, 3),
        "seconds": round(now - since, 3),
        "threshold": threshold,
        "generation": owed["generation"],
        "observed_generation": owed["observed_generation"],
    }


def stall_hint(ref, namespace, set_name, failing_event):
    """What to check when the controller does not act: whether it runs, or, when its events say it fails, why."""
    events_cmd = "kubectl -n {0} get events --field-selector involvedObject.kind=StatefulSet,involvedObject.name={1}".format(
        namespace, set_name
    )
    if failing_event is not None:
        return (
            "the controller runs but its requests fail ({0}: {1}): fix that cause (quota, admission webhook, "
            "Pod Security, claim creation), see {2}".format(failing_event.get("reason"), clause(failing_event.get("message")), events_cmd)
        )
    return (
        "is kube-controller-manager running? Check it (kubectl -n kube-system get pods -l component=kube-controller-manager, "
        "or its service on the control-plane hosts) and read its logs (statefulset controller); see {0}".format(events_cmd)
    )


def stall_clause(stall):
    return "the StatefulSet controller has not acted for {0:.0f}s (since {1}, {2:.1f}s into the wait): {3}".format(
        stall["seconds"], stall["since"], stall["since_seconds"], stall["detail"]
    )


def stall_message(ref, stall, waiting, events, hint):
    """The failure message when the controller has owed the same step for longer than controller_stall_timeout."""
    return (
        "StatefulSet {ref}: {what}. {waiting}Last events of the StatefulSet (newest last): {events}. Try: {hint}. "
        "If the controller is only slow, raise controller_stall_timeout (0 turns this check off)."
    ).format(ref=ref, what=stall_clause(stall), waiting=waiting, events=joined_events(events), hint=hint)


def waiting_clause(ready_count, replicas, n):
    """``<ready>/<replicas> ordinals Ready, waiting for ordinal <n>. `` (empty when every ordinal is Ready)."""
    if n is None:
        return "Every ordinal is Ready ({0}/{1}); the controller's step is still owed. ".format(ready_count, replicas)
    return "{0}/{1} ordinals Ready, waiting for ordinal {2}. ".format(ready_count, replicas, n)


# ---------------------------------------------------------------------- the timeout


def timeout_base(timeout, ref):
    return "Timed out after {0}s waiting for StatefulSet {1}".format(int(timeout), ref)


def disconnected_clause(last_disconnect):
    return " The API server was unreachable at the end: {0}.".format(last_disconnect) if last_disconnect else ""


def timeout_no_set_message(base, appeared_never_with_wait, disconnected):
    if appeared_never_with_wait:
        return "{0}: it did not appear. Check that the task that creates it ran, and the name and namespace.{1}".format(base, disconnected)
    return "{0}: the StatefulSet could not be read.{1}".format(base, disconnected)


def timeout_no_pods_message(base, selector, disconnected):
    return "{0}: its pods (selector {1}) could not be listed.{2}".format(base, selector, disconnected)


def timeout_unobserved_message(base, generation, observed, disconnected):
    return (
        "{0}: every ordinal is Ready but the StatefulSet controller has not observed generation {1} "
        "(status.observedGeneration {2}). Check that kube-controller-manager runs.{3}"
    ).format(base, generation, observed, disconnected)


def missing_pod_detail(name, n, target, events, set_replicas):
    """Why the pod of ordinal ``n``, the lowest not Ready, does not exist; ``set_replicas``: the set's spec.replicas."""
    if n >= target["start"] + set_replicas:
        why = "the set's spec.replicas is {0}, so the controller does not create it ({1} ordinals were asked of the wait)".format(
            set_replicas, target["replicas"]
        )
    elif target["policy"] == "OrderedReady" and n > target["start"]:
        why = "the controller has not created it, although ordinal {0} is Ready (OrderedReady)".format(n - 1)
    else:
        why = "the controller has not created it"
    return "pod {0} does not exist: {1}. Last events of the StatefulSet (newest last): {2}".format(name, why, joined_events(events))


def pod_detail(name, pod, state, target, ready, events):
    detail = "pod {0}: {1}".format(name, clause(state))
    if ready and target["update_revision"] and pod_revision(pod) != target["update_revision"]:
        detail += (
            ". It is Ready but runs revision {0}, not the update revision {1}: the rolling update has not "
            "replaced it yet (partition {2})".format(pod_revision(pod), target["update_revision"], target["partition"])
        )
    return detail + ". Last events (newest last): {0}".format(joined_events(events))


def timeout_ordinal_message(base, ready_count, replicas, n, detail, disconnected, namespace, pod):
    return (
        "{base}: {ready}/{replicas} ordinals Ready, waiting for ordinal {n}; {detail}.{disc} "
        "Try: kubectl -n {ns} describe pod {pod}; raise timeout if it is only slow."
    ).format(base=base, ready=ready_count, replicas=replicas, n=n, detail=detail, disc=disconnected, ns=namespace, pod=pod)


def stall_note(stall, hint=None):
    """A sentence on the controller's owed step for a timeout message, or '' when it owes none."""
    if not stall:
        return ""
    return " Also, {0}{1}.".format(stall_clause(stall), ": " + hint if hint else "")


# ---------------------------------------------------------------------- check mode


def check_missing_message(ref, timeout, wait_for_set):
    return "StatefulSet {0} does not exist (yet): a real run would {1}.".format(
        ref,
        "wait up to {0}s for it to appear".format(int(timeout)) if wait_for_set else "fail unless an earlier task creates it",
    )


def check_message(ref, timeout, waiting, ready):
    return "StatefulSet {0}: {1}".format(
        ref,
        "every ordinal is Ready, a real run would return at once"
        if ready
        else "a real run would wait up to {0}s for ordinals {1}".format(int(timeout), waiting or "(controller catching up)"),
    )
