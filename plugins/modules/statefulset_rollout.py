#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: statefulset_rollout
short_description: Roll a StatefulSet to its new revision one ordinal at a time, through its partition
version_added: 0.2.0
author:
  - kubess.stateful maintainers (@kubess)
description:
  - Moves the pods of a StatefulSet to its update revision (C(status.updateRevision)) one ordinal at a time, the
    highest first, by lowering the rolling update's C(partition) to that ordinal; the controller then replaces that
    pod, and only that one. Each step waits, as M(kubess.stateful.statefulset_wait) does, until every ordinal is
    Ready and those at or above the partition run the update revision, so the next pod is replaced only when the
    members are all back (for a database whose readiness means synced, once the replaced member has caught up).
  - The first ordinal that does not become Ready stops the rollout with the wait's diagnosis (reason, message, pod
    state, events). The partition stays at that ordinal, so every lower ordinal keeps the revision it runs.
  - Run again once the template is back to its previous values and the updated ordinals roll back; once the template
    is fixed, the rollout goes on. A pod that is neither on the update revision nor Ready is deleted before its step
    (the controller does not replace such a pod by itself under C(OrderedReady), which is why a rollback stays stuck
    on a plain StatefulSet).
  - The roles of this collection hold a changed pod template at the partition (C(partition) equal to the replicas
    when they apply it), then run this module; at the end the partition is C(0), as a StatefulSet has by default.
  - Nothing to do (every pod on the update revision, partition 0) is not a change. A pod on the update revision at or
    above the partition that is not Ready is waited for again, and the partition is not lowered past it.
  - The partition counts from the set's first ordinal (C(spec.ordinals.start)), as the controller counts it.
  - With O(wait), the module then waits until every ordinal is Ready, in order, as M(kubess.stateful.statefulset_wait)
    does (also when there was nothing to roll, as for a set just made), and returns what that module returns; one task
    instead of two after each apply.
options:
  timeout:
    description:
      - How long, in seconds, each ordinal may take to be replaced and Ready.
    type: int
    default: 300
  fail_fast:
    description:
      - Stop as soon as the replaced pod cannot become Ready by itself (image errors, crash loop, unschedulable), as
        M(kubess.stateful.statefulset_wait) does, instead of waiting for O(timeout).
    type: bool
    default: true
  controller_stall_timeout:
    description:
      - Fail when the StatefulSet controller has owed the set the same step for this many seconds, as in
        M(kubess.stateful.statefulset_wait); V(0) turns the check off.
    type: int
    default: 60
  wait:
    description:
      - Once the ordinals are rolled (or when none needs it), wait until every ordinal of the set is Ready, in order,
        with M(kubess.stateful.statefulset_wait)'s defaults and this module's O(timeout), O(fail_fast) and
        O(controller_stall_timeout). The result is then that module's, with this module's own under RV(rollout).
      - In check mode, the set and its pods are read once, as M(kubess.stateful.statefulset_wait) does in check mode.
    type: bool
    default: false
attributes:
  check_mode:
    support: partial
    details: Reads the StatefulSet and its pods once, without waiting for the controller to observe the latest spec,
      and returns the ordinals a real run would take, without writing. A template that the same check-mode run only
      pretended to apply is not seen (the set's update revision is still the old one); the apply task reports that
      change.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - kubess.stateful.k8s_module
  - kubess.stateful.statefulset
notes:
  - The credentials need C(get), C(list), C(watch) and C(patch) on C(statefulsets) (apps), and C(list), C(watch) and
    C(delete) on C(pods), C(list) on C(persistentvolumeclaims) and C(events), in the namespace.
seealso:
  - module: kubess.stateful.statefulset_wait
"""

EXAMPLES = r"""
- name: Apply the Galera StatefulSet with its new image, the members held at the partition
  kubernetes.core.k8s:
    definition: "{{ statefulset | combine({'spec': {'updateStrategy': {'rollingUpdate': {'partition': 3}}}},
                                          recursive=true) }}"

- name: Roll the members one at a time, pxc-2 first, each Synced before the next
  kubess.stateful.statefulset_rollout:
    name: pxc
    namespace: databases
    timeout: 900

- name: After any apply, roll what is held, then return once every member is Ready, in order
  kubess.stateful.statefulset_rollout:
    name: pxc
    namespace: databases
    timeout: 900
    wait: true
  register: pxc_wait
"""

RETURN = r"""
rollout:
  description:
    - With O(wait), this module's own fields below (RV(exists) to RV(would_roll)); the top level then holds what
      M(kubess.stateful.statefulset_wait) returns (C(ordinals), C(ready), C(replicas), ...), and C(changed) is
      whether the rollout wrote.
  returned: with O(wait)
  type: dict
  sample: {"exists": true, "partition_before": 3, "partition": 0, "rolled": [], "changed": true}
exists:
  description: Whether the StatefulSet exists. When it does not, nothing is done.
  returned: always
  type: bool
  sample: true
update_revision:
  description: The set's C(status.updateRevision), the revision the ordinals were moved to.
  returned: always
  type: str
  sample: pxc-7d9f8c6b5
partition_before:
  description: The partition when the module started.
  returned: when the set exists
  type: int
  sample: 3
partition:
  description:
    - The partition when the module ended (in check mode, what a real run would leave); on failure, where it stays.
    - Null when the set does not exist.
  returned: always
  type: int
  sample: 0
rolled:
  description:
    - The ordinals replaced, in order, each with how long it took and whether its pod was deleted first (neither on
      the update revision nor Ready).
  returned: when the set exists, not in check mode (on failure, the ordinals replaced before the one that failed)
  type: list
  elements: dict
  sample: [{"ordinal": 2, "pod": "pxc-2", "forced": false, "seconds": 41.2}]
seconds:
  description: How long the rollout took.
  returned: when the set exists, not in check mode, on success
  type: float
  sample: 131.7
would_roll:
  description: In check mode, the ordinals a real run would replace, highest first.
  returned: check mode, when the set exists
  type: list
  elements: dict
  sample: [{"ordinal": 2, "pod": "pxc-2"}, {"ordinal": 1, "pod": "pxc-1"}]
stopped_at:
  description: On failure, the ordinal where the rollout stopped (the partition stays there).
  returned: failure
  type: int
  sample: 2
reason:
  description: On failure, why the ordinal did not become Ready, as in M(kubess.stateful.statefulset_wait).
  returned: failure
  type: str
  sample: ErrImageNeverPull
"""

from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import ModuleFailure
from ansible_collections.kubess.stateful.plugins.module_utils._k8s_module import check_set_options, finish, set_argspec, start
from ansible_collections.kubess.stateful.plugins.module_utils._rollout import Rollout
from ansible_collections.kubess.stateful.plugins.module_utils._statefulset_waiter import StatefulSetWaiter
from ansible_collections.kubess.stateful.plugins.module_utils._watch import build_api

# Passed as they are to the rollout, and with wait to the waiter.
SHARED_OPTIONS = ("timeout", "fail_fast", "controller_stall_timeout")


def argspec():
    return set_argspec(dict(timeout=dict(type="int", default=300), fail_fast=dict(type="bool", default=True),
                            controller_stall_timeout=dict(type="int", default=60),
                            wait=dict(type="bool", default=False)))


def roll(api, params, check_mode):
    """The rollout's result; with wait, the waiter's, the rollout's under 'rollout' and its 'changed'."""
    options = {k: params[k] for k in SHARED_OPTIONS}
    # With wait, the pods not Ready when nothing is to be rolled (a set just made) are the waiter's, not steps.
    rolled = Rollout(api, params["name"], params["namespace"], wait_again=not params["wait"],
                     **options).run(check_mode=check_mode)
    if not params["wait"]:
        return rolled
    waiter = StatefulSetWaiter(api, params["name"], params["namespace"], **options)
    try:
        waited = waiter.check() if check_mode else waiter.wait()
    except ModuleFailure as err:
        raise ModuleFailure(err.msg, **dict(err.result, changed=rolled["changed"], rollout=rolled))
    return dict(waited, changed=rolled["changed"], rollout=rolled)


def main():
    module, api, _started = start(argspec(), check_set_options, build_api)
    params = module.params
    finish(module, lambda: roll(api, params, module.check_mode),
           "StatefulSet {0}/{1}".format(params["namespace"], params["name"]))


if __name__ == "__main__":
    main()
