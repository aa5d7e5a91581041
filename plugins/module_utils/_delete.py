# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Deleting what a role made, kind by kind (kubess.stateful.k8s_delete): each entry names its objects by name or by
label selector, never by neither; each entry's objects are gone before the next entry's are deleted."""

import time

from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import ModuleFailure
from ansible_collections.kubess.stateful.plugins.module_utils._watch import UntilDeadline, watch_one


def entry_problem(index, entry):
    """What is wrong with ``objects[index]``, as a message naming it, or None."""
    where = "objects[{0}]".format(index)
    if not isinstance(entry, dict):
        return "{0} must be a mapping, got {1!r}".format(where, entry)
    unknown = sorted(set(entry) - {"api_version", "kind", "name", "selectors"})
    if unknown:
        return "{0} has unknown keys {1}".format(where, ", ".join(unknown))
    for key in ("api_version", "kind"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            return "{0}.{1} must be a non-empty string, got {2!r}".format(where, key, entry.get(key))
    name, selectors = entry.get("name"), entry.get("selectors") or []
    if name is not None and (not isinstance(name, str) or not name.strip()):
        return "{0}.name must be a non-empty string, got {1!r}".format(where, name)
    if not isinstance(selectors, list) or any(not isinstance(s, str) or "=" not in s for s in selectors):
        return "{0}.selectors must be a list of key=value label selectors, got {1!r}".format(where, selectors)
    if name is None and not selectors:
        # A delete with neither would take every object of the kind in the namespace.
        return "{0} ({1}) names neither a name nor selectors: nothing is deleted without one".format(where, entry["kind"])
    if name is not None and selectors:
        # Which would win is a guess: a name and selectors that disagree would delete what the user did not mean.
        return "{0} ({1}) gives both a name and selectors: give one".format(where, entry["kind"])
    return None


def describe(entry):
    """``<Kind> <name>`` or ``<Kind> <selectors>``, for the result and the messages."""
    return "{0} {1}".format(entry["kind"], entry.get("name") or ",".join(entry.get("selectors") or []))


class Deletion(UntilDeadline):
    """Delete ``objects`` (entries of api_version, kind, and name or selectors) in ``namespace``, in order."""

    def __init__(self, api, namespace, objects, propagation, wait, deadline, clock=time.monotonic):
        self.api = api
        self.namespace = namespace
        self.objects = objects
        self.propagation = propagation
        self.wait = wait
        self.deadline = deadline
        self.clock = clock

    def names(self, path, entry):
        """The names of the entry's objects that exist now."""
        if entry.get("name"):
            found = self._retry(lambda: self.api.list(path + "/" + entry["name"]), gone_ok=True)
            return [] if found is None else [entry["name"]]
        query = [("labelSelector", ",".join(entry["selectors"]))]
        items = self._retry(lambda: self.api.list(path, query)).get("items") or []
        return sorted((item.get("metadata") or {}).get("name") for item in items)

    def _delete(self, path, name):
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": self.propagation}
        self._retry(lambda: self.api.send("DELETE", path + "/" + name, body=body), gone_ok=True)

    def run(self, check_mode=False):
        started = self.clock()
        deleted = []
        for entry in self.objects:
            path = self._retry(lambda e=entry: self.api.resource_path(e["api_version"], e["kind"], self.namespace))
            names = self.names(path, entry)
            if not check_mode:
                for name in names:
                    self._delete(path, name)
                if self.wait:
                    for name in names:
                        gone, last = watch_one(self.api, entry["kind"] + "/" + name, path, name, self.deadline,
                                               lambda obj: obj is None, self.clock)
                        if not gone:
                            finalizers = ((last or {}).get("metadata") or {}).get("finalizers") or []
                            raise ModuleFailure(
                                "{0} {1}/{2} was still there at the deadline{3}; the entries after {4} were not "
                                "deleted".format(entry["kind"], self.namespace, name,
                                                 " (finalizers: {0})".format(", ".join(finalizers)) if finalizers else "",
                                                 describe(entry)),
                                deleted=deleted, kind=entry["kind"], name=name)
            deleted.extend(dict(api_version=entry["api_version"], kind=entry["kind"], name=name) for name in names)
        return dict(changed=bool(deleted), deleted=deleted, seconds=round(self.clock() - started, 3))
