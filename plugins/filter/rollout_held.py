# Copyright (c) kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A StatefulSet manifest marked with its pod template's hash, and held at the partition when that template changes
on an existing set, so that kubess.stateful.statefulset_rollout moves the pods one ordinal at a time. The
documentation is in rollout_held.yml beside this file."""

from __future__ import annotations

import copy
import hashlib
import json

from ansible.errors import AnsibleFilterError

ANNOTATION = "kubess.io/pod-template-sha256"


def template_hash(manifest):
    """The SHA-256 of the pod template, as canonical JSON."""
    template = (manifest.get("spec") or {}).get("template") or {}
    return hashlib.sha256(json.dumps(template, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def rollout_held(manifest, existing=None):
    """``manifest`` with the template hash annotation; with ``partition`` equal to the existing set's replicas when
    the set exists, has pods, and was applied with another template (or without the annotation), or equal to the
    existing partition when it is above 0 (a rollout under way). Any other kind of object is returned as it is, so
    that a role's list of manifests can be mapped through."""
    if not isinstance(manifest, dict):
        raise AnsibleFilterError("rollout_held takes a manifest (a mapping), got {0}".format(type(manifest).__name__))
    if manifest.get("kind") != "StatefulSet":
        return manifest
    out = copy.deepcopy(manifest)
    digest = template_hash(out)
    metadata = out.setdefault("metadata", {})
    metadata["annotations"] = dict(metadata.get("annotations") or {}, **{ANNOTATION: digest})
    existing = existing or {}
    spec = existing.get("spec") or {}
    replicas = int(spec.get("replicas") or 0)
    stored = ((existing.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    # A rollout under way (a run stopped at an ordinal, or before its first step) keeps its partition: left out of
    # the manifest, a partition the role's apply owns would be removed, and the controller would roll the rest alone.
    held = int((((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition")) or 0)
    if existing and replicas > 0 and stored != digest:
        held = max(held, replicas)
    if held > 0:
        strategy = out["spec"].setdefault("updateStrategy", {"type": "RollingUpdate"})
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            raise AnsibleFilterError("rollout_held: the manifest's update strategy is not RollingUpdate")
        strategy["type"] = "RollingUpdate"
        strategy["rollingUpdate"] = dict(strategy.get("rollingUpdate") or {}, partition=held)
    return out


class FilterModule:
    """kubess.stateful rollouts through the partition."""

    def filters(self):
        return {"rollout_held": rollout_held}
