# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The connection options of the collection's lookups that read objects (passed to kubernetes.core.k8s)."""


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description: Kubeconfig file; the kubernetes client's default when not given.
    type: str
  context:
    description: Context of that kubeconfig; its current context when not given.
    type: str
"""
