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
  kubeconfig:
    description: Kubeconfig file; the kubernetes client's default when not given.
    type: str
  context:
    description: Context of that kubeconfig; its current context when not given.
    type: str
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
from ansible.plugins.loader import lookup_loader
from ansible.plugins.lookup import LookupBase


class LookupModule(LookupBase):
    """Several Secrets, read with kubernetes.core.k8s and decoded, under names."""

    def run(self, terms, variables=None, **kwargs):
        if len(terms) != 1 or not isinstance(terms[0], dict):
            raise AnsibleError("secret_data takes one mapping of names to Secret names")
        namespace = kwargs.get("namespace")
        if not namespace:
            raise AnsibleError("secret_data needs the namespace of the Secrets")
        auth = {key: value for key, value in kwargs.items() if key in ("kubeconfig", "context") and value}
        reader = lookup_loader.get("kubernetes.core.k8s", loader=self._loader, templar=self._templar)
        found = {}
        for name, secret in terms[0].items():
            if not secret or not isinstance(secret, str):
                raise AnsibleError(f"secret_data: the Secret of {name!r} must be a name, got {secret!r}")
            objects = reader.run([], variables, kind="Secret", namespace=namespace, resource_name=secret, **auth)
            found[name] = decoded(objects[0] if objects else None)
        return [found]


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
