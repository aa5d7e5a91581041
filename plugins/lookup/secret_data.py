# Copyright (c) kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read what several Secrets of one namespace hold, decoded, in one task."""

from __future__ import annotations

DOCUMENTATION = r"""
name: secret_data
short_description: What several Secrets of a namespace hold, in plain text, by name
description:
  - Reads each Secret of a mapping with the P(kubernetes.core.k8s#lookup) lookup and returns a mapping of the same
    names to the Secret's C(data), each value decoded from base64 - empty when the Secret does not exist - so that a
    role reads back what it keeps (certificates and keys) in one task and compares it with what it must hold.
  - Returns the values themselves - use it only in a task with C(no_log).
  - Reading only; nothing is written, whatever the check mode.
author:
  - kubess.stateful maintainers (@kubess)
options:
  _terms:
    description: One mapping of names to the names of Secrets in O(namespace).
    type: list
    elements: dict
    required: true
  namespace:
    description: Namespace of the Secrets.
    type: str
    required: true
extends_documentation_fragment:
  - kubess.stateful.k8s_lookup
"""

EXAMPLES = r"""
- name: Read the TLS Secrets the role keeps
  ansible.builtin.set_fact:
    stored: "{{ lookup('kubess.stateful.secret_data', {'ca': 'etcd-tls-ca', 'members': 'etcd-tls-members'}, namespace='db') }}"
  no_log: true
"""

RETURN = r"""
_raw:
  description: One mapping, each name to the Secret's keys and their values in plain text (empty when there is no Secret).
  type: list
  elements: dict
"""

import base64
import binascii

from ansible.errors import AnsibleError
from ansible_collections.kubess.stateful.plugins.plugin_utils._named_reads import NamedReads


class LookupModule(NamedReads):
    """Several Secrets, read with kubernetes.core.k8s and decoded, under names."""

    _lookup_name = "secret_data"
    _takes = "Secret names"

    def run(self, terms, variables=None, **kwargs):
        if not kwargs.get("namespace"):
            raise AnsibleError("secret_data needs the namespace of the Secrets")
        return super().run(terms, variables, **kwargs)

    def read(self, reader, variables, name, wanted, auth, **kwargs):
        if not wanted or not isinstance(wanted, str):
            raise AnsibleError(f"secret_data: the Secret of {name!r} must be a name, got {wanted!r}")
        objects = reader.run([], variables, kind="Secret", namespace=kwargs["namespace"], resource_name=wanted, **auth)
        return decoded(objects[0] if objects else None)


def decoded(secret):
    """The Secret's data with each value decoded to text; empty for no Secret. An error names the key, never a value."""
    if not secret:
        return {}
    values = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            values[key] = base64.b64decode(str(value), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            name = (secret.get("metadata") or {}).get("name", "?")
            raise AnsibleError(f"secret_data: key {key!r} of Secret {name!r} is not base64-encoded UTF-8 text") from None
    return values
