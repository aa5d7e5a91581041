#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: statefulset_scale_down
short_description: Scale a StatefulSet down one ordinal at a time, the highest first, each pod gone before the next
version_added: 0.2.0
author:
  - kubess.stateful maintainers (@kubess)
description:
  - Lowers the StatefulSet's C(spec.replicas) by one, deletes the pod of the ordinal that leaves, and waits, on a
    watch, until the API no longer has that pod (its containers have stopped and its volumes are released), then
    takes the next ordinal down, until O(replicas) are left.
  - The same order whatever the set's C(podManagementPolicy). With C(Parallel) the controller would stop every
    leaving member at once; with C(OrderedReady) it would not scale down while a member is not Ready, which is
    when a teardown is often needed.
  - A clustered database leaves one member at a time this way. A Galera cluster stopped so ends with its last
    member marked C(safe_to_bootstrap), from which a later start bootstraps without a recovery.
  - The claims of the pods (C(PersistentVolumeClaims)) are left as they are.
  - A set that does not exist is not an error; the result says so.
options:
  replicas:
    description:
      - Number of ordinals to keep, from the first. V(0) stops every pod of the set.
      - A set that already has this many or fewer is left as it is.
    type: int
    default: 0
  timeout:
    description:
      - How long, in seconds, the whole scale-down may take. At the deadline the module fails, naming the pod that
        is still there and what holds it; the set keeps the replicas it had reached.
    type: int
    default: 600
attributes:
  check_mode:
    support: full
    details: Reads the StatefulSet once and returns the ordinals a real run would stop, without writing.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - kubess.stateful.k8s_module
  - kubess.stateful.statefulset
notes:
  - The credentials need C(get) and C(patch) on C(statefulsets) (apps), and C(list), C(watch) and C(delete) on
    C(pods), in the namespace.
seealso:
  - module: kubess.stateful.statefulset_wait
"""

EXAMPLES = r"""
- name: Stop every member of the Galera cluster, pxc-2 first, then pxc-1, then pxc-0
  kubess.stateful.statefulset_scale_down:
    name: pxc
    namespace: databases
    replicas: 0
    timeout: 900

- name: Leave two members of five
  kubess.stateful.statefulset_scale_down:
    name: etcd
    namespace: kube-stateful
    replicas: 2
"""

RETURN = r"""
replicas_before:
  description: The set's C(spec.replicas) when the module started (0 when it does not exist).
  returned: always
  type: int
  sample: 3
replicas:
  description: The set's C(spec.replicas) when the module ended (in check mode, what a real run would leave).
  returned: always
  type: int
  sample: 0
exists:
  description: Whether the StatefulSet exists. When it does not, nothing is done.
  returned: always
  type: bool
  sample: true
stopped:
  description:
    - The ordinals stopped, in the order they were stopped, with how long each took (in check mode, the ordinals a
      real run would stop, without C(seconds)).
  returned: always
  type: list
  elements: dict
  sample: [{"ordinal": 2, "pod": "pxc-2", "seconds": 21.4}, {"ordinal": 1, "pod": "pxc-1", "seconds": 18.0}]
seconds:
  description: How long the scale-down took.
  returned: when the set was scaled down (not in check mode)
  type: float
  sample: 62.1
ordinal:
  description: On failure, the ordinal whose pod was still there at the deadline.
  returned: failure
  type: int
  sample: 1
pod:
  description: On failure, the name of that pod.
  returned: failure
  type: str
  sample: pxc-1
"""

from ansible_collections.kubess.stateful.plugins.module_utils._k8s_module import check_set_options, finish, set_argspec, start
from ansible_collections.kubess.stateful.plugins.module_utils._scale_down import ScaleDown
from ansible_collections.kubess.stateful.plugins.module_utils._watch import build_api


def argspec():
    return set_argspec(dict(replicas=dict(type="int", default=0), timeout=dict(type="int", default=600)))


def validate(params):
    """The first value check that fails, as a message naming the option, or None."""
    return check_set_options(params)


def main():
    module, api, started = start(argspec(), validate, build_api)
    params = module.params
    scale = ScaleDown(api, params["name"], params["namespace"], params["replicas"], started + params["timeout"])
    finish(module, lambda: scale.run(check_mode=module.check_mode),
           "StatefulSet {0}/{1}".format(params["namespace"], params["name"]))


if __name__ == "__main__":
    main()
