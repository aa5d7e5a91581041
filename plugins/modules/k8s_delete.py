#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: k8s_delete
short_description: Delete a role's objects kind by kind, by name or label selector, each kind gone before the next
version_added: 0.2.0
author:
  - kubess.stateful maintainers (@kubess)
description:
  - Takes O(objects) in order. For each entry it finds the objects that exist (the one named, or those matching
    every label selector), deletes them with the propagation policy O(propagation), and with O(wait) waits, on a
    watch, until the API no longer has them before the next entry. With the default V(Foreground) an object is
    gone only once what it owns is (a StatefulSet's or a Deployment's pods, a Job's pods).
  - An entry with neither a name nor a selector is refused before anything is deleted, so that no entry can take
    every object of its kind in the namespace; so is an entry with both, whose meaning would be a guess.
  - The roles of this collection remove what they made with it (C(<role>_state=absent)); what holds the data is
    in their list only with C(<role>_purge).
options:
  namespace:
    description:
      - Namespace of the objects. A cluster-scoped kind (as discovery serves it) is deleted from the cluster's
        collection; the roles of this collection list only namespaced kinds.
    type: str
    required: true
  objects:
    description:
      - The entries, in the order they are deleted. Each has C(api_version), C(kind), and either C(name) or
        C(selectors) (a list of C(key=value) label selectors, all of which must match).
    type: list
    elements: dict
    required: true
  propagation:
    description:
      - The deletion's C(propagationPolicy).
    type: str
    choices: [Foreground, Background, Orphan]
    default: Foreground
  wait:
    description:
      - Wait until each entry's objects are gone before the next entry.
    type: bool
    default: true
  timeout:
    description:
      - How long, in seconds, the whole deletion may take. At the deadline the module fails, naming the object still
        there and its finalizers; the entries after it are left.
    type: int
    default: 300
attributes:
  check_mode:
    support: full
    details: Reads which objects exist and returns them as RV(deleted), without deleting.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - kubess.stateful.k8s_module
notes:
  - The credentials need C(get), C(list), C(watch) and C(delete) on each kind, in the namespace.
seealso:
  - module: kubess.stateful.statefulset_scale_down
  - module: kubernetes.core.k8s
"""

EXAMPLES = r"""
- name: Delete the StatefulSet and the Service of the role, then one ConfigMap by name
  kubess.stateful.k8s_delete:
    namespace: databases
    objects:
      - {api_version: apps/v1, kind: StatefulSet, selectors: [app.kubernetes.io/instance=pxc]}
      - {api_version: v1, kind: Service, selectors: [app.kubernetes.io/instance=pxc]}
      - {api_version: v1, kind: ConfigMap, name: pxc-config}
    timeout: 600
"""

RETURN = r"""
deleted:
  description: The objects deleted, in order (in check mode, those a real run would delete).
  returned: success
  type: list
  elements: dict
  sample: [{"api_version": "apps/v1", "kind": "StatefulSet", "name": "pxc"}]
seconds:
  description: How long the deletion took.
  returned: success
  type: float
  sample: 12.5
kind:
  description: On failure at the deadline, the kind of the object still there.
  returned: failure
  type: str
  sample: StatefulSet
name:
  description: On failure at the deadline, the name of that object.
  returned: failure
  type: str
  sample: pxc
"""

from ansible_collections.kubess.stateful.plugins.module_utils._delete import Deletion, entry_problem
from ansible_collections.kubess.stateful.plugins.module_utils._k8s_module import finish, start, with_auth
from ansible_collections.kubess.stateful.plugins.module_utils._watch import build_api


def argspec():
    return with_auth(dict(
        namespace=dict(type="str", required=True),
        objects=dict(type="list", elements="dict", required=True),
        propagation=dict(type="str", default="Foreground", choices=["Foreground", "Background", "Orphan"]),
        wait=dict(type="bool", default=True),
        timeout=dict(type="int", default=300),
    ))


def check_options(params):
    """The first option that is wrong, as a message, or None: before anything is read or deleted."""
    if params["timeout"] <= 0:
        return "timeout must be a positive number of seconds, got {0}".format(params["timeout"])
    if not params["namespace"].strip():
        return "namespace must not be empty"
    for index, entry in enumerate(params["objects"]):
        problem = entry_problem(index, entry)
        if problem:
            return problem
    return None


def main():
    module, api, started = start(argspec(), check_options, build_api)
    params = module.params
    deletion = Deletion(api, params["namespace"], params["objects"], params["propagation"], params["wait"],
                        started + params["timeout"])
    finish(module, lambda: deletion.run(check_mode=module.check_mode), "namespace {0}".format(params["namespace"]))


if __name__ == "__main__":
    main()
