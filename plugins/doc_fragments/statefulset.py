# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The options of a module that works on one StatefulSet: its name and namespace."""


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    DOCUMENTATION = r"""
options:
  name:
    description:
      - Name of the StatefulSet; its pods are C(<name>-<ordinal>).
    type: str
    required: true
  namespace:
    description:
      - Namespace of the StatefulSet.
    type: str
    required: true
"""
