# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The options of a module that waits until a role's Jobs have ended: their namespace, what a failure means, how
much of a failed Job's log it carries, and how long the wait may take."""


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    DOCUMENTATION = r"""
options:
  namespace:
    description:
      - Namespace of the Jobs.
    type: str
    required: true
  failure:
    description:
      - What a failure means for the user, said before the failed Jobs and their logs (for example what was not
        done).
    type: str
    default: ""
  log_lines:
    description:
      - How many lines of a failed Job's log the failure carries.
    type: int
    default: 25
  timeout:
    description:
      - How long, in seconds, all the Jobs together may take.
    type: int
    default: 600
"""
