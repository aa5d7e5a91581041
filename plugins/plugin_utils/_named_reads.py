# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the collection's lookups that read objects share: one mapping of names to what to read, the connection
options (kubeconfig, context) of the kubernetes.core.k8s lookup that does the reading, one result under each name."""

from ansible.errors import AnsibleError
from ansible.plugins.loader import lookup_loader
from ansible.plugins.lookup import LookupBase


class NamedReads(LookupBase):
    """A lookup that takes one mapping and returns one mapping with the same names; ``read`` reads one name's."""

    # What the lookup is called, and what each name maps to, for the message when the term is not one mapping.
    _lookup_name = ""
    _takes = ""

    def read(self, reader, variables, name, wanted, auth, **kwargs):
        """What ``name`` gets for ``wanted``, read with ``reader`` (the kubernetes.core.k8s lookup) and ``auth``."""
        raise NotImplementedError

    def run(self, terms, variables=None, **kwargs):
        if len(terms) != 1 or not isinstance(terms[0], dict):
            raise AnsibleError(f"{self._lookup_name} takes one mapping of names to {self._takes}")
        auth = {key: value for key, value in kwargs.items() if key in ("kubeconfig", "context") and value}
        reader = lookup_loader.get("kubernetes.core.k8s", loader=self._loader, templar=self._templar)
        return [{name: self.read(reader, variables, name, wanted, auth, **kwargs) for name, wanted in terms[0].items()}]
