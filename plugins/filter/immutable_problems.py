# Copyright (c) kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fields of an existing StatefulSet or Deployment that the role's input would change but Kubernetes does not
allow to update, each with the variable to keep and what to do instead. The documentation is in
immutable_problems.yml beside this file."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.kubess.stateful.plugins.filter.volume_paths import k8s_quantity

# The spec fields Kubernetes refuses to update (apps/v1 validation: a StatefulSet may change only replicas, ordinals,
# template, updateStrategy, persistentVolumeClaimRetentionPolicy and minReadySeconds; a Deployment not its selector).
FIELDS = {
    "StatefulSet": ("serviceName", "podManagementPolicy", "selector", "volumeClaimTemplates"),
    "Deployment": ("selector",),
}


def _orphan(kind, namespace, name):
    return f"kubectl delete {kind.lower()} -n {namespace} {name} --cascade=orphan"


def _advice(field, kind, namespace, name, have, want, fixed):
    orphan = _orphan(kind, namespace, name)
    if fixed:
        return (f"The role always writes {want}: delete only the {kind} ({orphan}: its pods and claims stay) and run "
                f"again to make it anew")
    if field == "volumeClaimTemplates":
        return (f"Keep the values the set was made with. To change the volumes themselves, change each claim (a "
                f"resize where its StorageClass allows expansion), then delete only the StatefulSet ({orphan}: its "
                f"pods and claims stay) and run again")
    if field == "podManagementPolicy":
        return (f"Delete only the StatefulSet ({orphan}: its pods and claims stay) and run again to make it anew "
                f"with {want}, or keep {have}")
    if kind == "Deployment":
        return (f"It was not made by this role with these values (another tool, or an older version): choose another "
                f"name, or delete the Deployment (kubectl delete deployment -n {namespace} {name}; its pods are "
                f"replaced, its volumes stay) and run again")
    return (f"It was not made by this role with these values (another tool, or an older version): choose another "
            f"name, or delete only the StatefulSet ({orphan}: its pods and claims stay) and run again")


def _selector(value):
    value = value or {}
    return {"matchLabels": dict(value.get("matchLabels") or {}),
            "matchExpressions": list(value.get("matchExpressions") or [])}


def _storage(value):
    try:
        return k8s_quantity(value)
    except AnsibleFilterError:
        return str(value)


def _claim(template):
    """What Kubernetes keeps of a claim template, with the API server's defaults, in a form that compares."""
    metadata = template.get("metadata") or {}
    spec = template.get("spec") or {}
    requests = (spec.get("resources") or {}).get("requests") or {}
    return {
        "labels": dict(metadata.get("labels") or {}),
        "accessModes": list(spec.get("accessModes") or []),
        "storageClassName": spec.get("storageClassName") or "",
        "volumeMode": spec.get("volumeMode") or "Filesystem",
        "storage": _storage(requests.get("storage", "")),
    }


def _claims(templates):
    return {(t.get("metadata") or {}).get("name", ""): _claim(t) for t in templates or []}


def _shown(value):
    return "''" if value == "" else str(value)


def _claim_changes(have, want):
    changes = []
    for name in sorted(set(have) | set(want)):
        if name not in want:
            changes.append(f"claim template {name} would go")
        elif name not in have:
            changes.append(f"claim template {name} would be added")
        else:
            changes.extend(f"{name} {key} {_shown(have[name][key])} -> {_shown(want[name][key])}"
                           for key in want[name] if have[name][key] != want[name][key])
    return changes


def _changes(field, spec, desired):
    if field == "volumeClaimTemplates":
        return _claim_changes(_claims(spec.get(field)), _claims(desired.get(field)))
    if field == "selector":
        have, want = _selector(spec.get(field)), _selector(desired.get(field))
    elif field == "podManagementPolicy":
        have, want = spec.get(field) or "OrderedReady", desired.get(field) or "OrderedReady"
    else:
        have, want = spec.get(field) or "", desired.get(field) or ""
    return [] if have == want else [f"{_shown(have)} -> {_shown(want)}"]


def immutable_problems(existing, desired, blame, fixed=()):
    """One message per immutable field of ``existing`` that ``desired`` (the spec the role would write) changes.

    ``blame`` maps each field to the variable(s) that set it; a field the role does not write is not compared.
    ``fixed`` names the fields whose value the role always writes (no variable chooses it).
    """
    if not existing:
        return []
    if not isinstance(existing, dict) or not isinstance(desired, dict) or not isinstance(blame, dict):
        raise AnsibleFilterError("immutable_problems takes the existing object, the desired spec and the variables "
                                 "that set each field, all mappings")
    kind = existing.get("kind") or "StatefulSet"
    if kind not in FIELDS:
        raise AnsibleFilterError(f"immutable_problems knows StatefulSet and Deployment, not {kind}")
    unknown = sorted(set(blame) - set(FIELDS[kind]))
    if unknown:
        raise AnsibleFilterError(f"immutable_problems: {', '.join(unknown)} is not an immutable field of a {kind}")
    metadata = existing.get("metadata") or {}
    namespace, name = metadata.get("namespace", ""), metadata.get("name", "")
    spec = existing.get("spec") or {}
    problems = []
    for field in FIELDS[kind]:
        if field not in blame:
            continue
        changes = _changes(field, spec, desired)
        if changes:
            default = "OrderedReady" if field == "podManagementPolicy" else ""
            have, want = spec.get(field) or default, desired.get(field) or default
            problems.append(
                f"{blame[field]} would change spec.{field} of {kind} {namespace}/{name} ({'; '.join(changes)}), "
                f"which Kubernetes does not allow updating. {_advice(field, kind, namespace, name, have, want, field in (fixed or ()))}")
    return problems


class FilterModule:
    """kubess.stateful checks of immutable fields."""

    def filters(self):
        return {"immutable_problems": immutable_problems}
