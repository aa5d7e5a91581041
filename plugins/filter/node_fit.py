# Copyright (c) kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which nodes a role's pods could be scheduled on, read before anything is written.

A StatefulSet with required pod anti-affinity needs one topology domain (one node, for kubernetes.io/hostname)
per replica; when there are fewer, the extra ordinals stay Pending and the wait fails after the set was applied.
This filter answers the question beforehand, the way the scheduler's filters would for a pod of the role: the
node selector (or required node affinity on the same labels), the taints with effect NoSchedule or NoExecute
that the pod does not tolerate, and cordoned nodes. The documentation is in node_fit.yml beside this file.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def tolerates(toleration, taint):
    """Whether one toleration tolerates one taint, as the scheduler decides it."""
    if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
        return False
    operator = toleration.get("operator") or "Equal"
    key = toleration.get("key") or ""
    if operator == "Exists":
        return not key or key == taint.get("key")
    return key == taint.get("key") and str(toleration.get("value") or "") == str(taint.get("value") or "")


def _taint_text(taint):
    value = f"={taint['value']}" if taint.get("value") else ""
    return f"{taint.get('key')}{value}:{taint.get('effect')}"


def _why_not(node, node_selector, tolerations, assume_labelled):
    meta, spec = node.get("metadata") or {}, node.get("spec") or {}
    labels = dict(meta.get("labels") or {})
    if meta.get("name") in assume_labelled:
        labels.update(node_selector)
    missing = [f"{k}={v}" for k, v in node_selector.items() if labels.get(k) != str(v)]
    if missing:
        return f"lacks the label {', '.join(missing)}"
    taints = [t for t in spec.get("taints") or [] if t.get("effect") in BLOCKING_EFFECTS]
    if spec.get("unschedulable"):
        taints.append(UNSCHEDULABLE_TAINT)
    untolerated = [t for t in taints if not any(tolerates(tol, t) for tol in tolerations)]
    if untolerated:
        return "has the taint " + ", ".join(_taint_text(t) for t in untolerated) + " (not tolerated)"
    return None


def node_fit(nodes, node_selector=None, tolerations=None, topology_key="kubernetes.io/hostname",
             assume_labelled=None):
    """The nodes a pod with this node selector and these tolerations may run on, and their topology domains.

    ``assume_labelled`` names nodes that will carry the node selector's labels before the pods exist (a role
    that labels them first). Returns ``nodes`` (names), ``domains`` (distinct values of ``topology_key`` among
    them) and ``left_out`` (one "<node> <reason>" per node it may not run on).
    """
    if not isinstance(nodes, list):
        raise AnsibleFilterError(f"node_fit takes the list of Node objects, got {type(nodes).__name__}")
    selector = {str(k): str(v) for k, v in (node_selector or {}).items()}
    tols = list(tolerations or [])
    labelled = set(assume_labelled or [])
    fit, left_out, domains = [], [], []
    for node in sorted(nodes, key=lambda n: (n.get("metadata") or {}).get("name", "")):
        name = (node.get("metadata") or {}).get("name", "")
        reason = _why_not(node, selector, tols, labelled)
        if reason:
            left_out.append(f"{name} {reason}")
            continue
        fit.append(name)
        domain = ((node.get("metadata") or {}).get("labels") or {}).get(topology_key)
        if domain is not None and domain not in domains:
            domains.append(domain)
    return {"nodes": fit, "domains": domains, "left_out": left_out}


def pod_anti_affinity(selector_labels, mode="required", topology_key="kubernetes.io/hostname"):
    """The podAntiAffinity that keeps a set's pods apart: V(required) never two in one topology domain,
    V(preferred) spread when the scheduler can."""
    term = {"topologyKey": topology_key, "labelSelector": {"matchLabels": dict(selector_labels)}}
    if mode == "required":
        return {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
    if mode == "preferred":
        return {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]}
    raise AnsibleFilterError(f"pod_anti_affinity takes required or preferred, got {mode!r}")


class FilterModule:
    """kubess.stateful scheduling filters."""

    def filters(self):
        return {"node_fit": node_fit, "pod_anti_affinity": pod_anti_affinity}
