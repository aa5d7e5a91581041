# Copyright (c) kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read several kinds of Kubernetes objects in one task, each under a name of its own."""

from __future__ import annotations

DOCUMENTATION = r"""
name: k8s_objects
short_description: Read several kinds of Kubernetes objects at once, by name
description:
  - Reads each query of a mapping with the M(kubernetes.core.k8s_info) lookup P(kubernetes.core.k8s#lookup) and
    returns a mapping of the same names to the objects found (a list, empty when none), so that a role reads
    everything its checks need in one task, in the controller's process, without starting a module.
  - Reading only; nothing is written, whatever the check mode.
  - Never returns a Secret's values - the C(data) of a Secret comes back with its keys and empty values, so that
    what this lookup returns can be shown (read the values with P(kubernetes.core.k8s#lookup), under C(no_log)).
author:
  - kubess.stateful maintainers (@kubess)
options:
  _terms:
    description:
      - One mapping of names to queries. Each query takes the options of P(kubernetes.core.k8s#lookup)
        (C(kind), C(api_version), C(namespace), C(resource_name), C(label_selector), C(field_selector)).
    type: list
    elements: dict
    required: true
extends_documentation_fragment:
  - kubess.stateful.k8s_lookup
"""

EXAMPLES = r"""
- name: Read a StatefulSet, its namespace and the nodes
  ansible.builtin.set_fact:
    cluster: >-
      {{ lookup('kubess.stateful.k8s_objects', {
           'statefulset': {'api_version': 'apps/v1', 'kind': 'StatefulSet', 'namespace': 'db', 'resource_name': 'pxc'},
           'namespace': {'kind': 'Namespace', 'resource_name': 'db'},
           'nodes': {'kind': 'Node'}}) }}
"""

RETURN = r"""
_raw:
  description: One mapping, each name of the queries to the list of objects found.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleError
from ansible_collections.kubess.stateful.plugins.plugin_utils._named_reads import NamedReads


class LookupModule(NamedReads):
    """Several kubernetes.core.k8s lookups, under names."""

    _lookup_name = "k8s_objects"
    _takes = "queries"

    def read(self, reader, variables, name, wanted, auth, **kwargs):
        if not isinstance(wanted, dict) or not wanted.get("kind"):
            raise AnsibleError(f"k8s_objects: the query {name!r} must be a mapping with a kind, got {wanted!r}")
        return [_without_values(obj) for obj in reader.run([], variables, **dict(wanted, **auth))]


def _without_values(obj):
    """A Secret with the keys of its data and none of the values; any other object as it is."""
    if not isinstance(obj, dict) or obj.get("kind") != "Secret":
        return obj
    clean = {key: value for key, value in obj.items() if key not in ("data", "stringData")}
    clean["data"] = {key: "" for key in obj.get("data") or {}}
    return clean
