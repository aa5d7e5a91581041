#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: job_wait
short_description: Wait on a watch until a role's Jobs have ended, and fail with the log of one that failed
version_added: 0.2.0
author:
  - kubess.stateful maintainers (@kubess)
description:
  - Watches every Job of O(names), in O(namespace), at once, until each has its C(Complete) condition, or one has its
    C(Failed) condition, for Jobs applied by another task. M(kubess.stateful.job_run) applies a role's Jobs and
    waits for them this way, in one task.
  - When every Job completed, returns them in RV(jobs). As soon as one failed, fails with O(failure) first, then for
    each failed Job the reason its controller gives and the last O(log_lines) lines of its newest pod's log, each line
    marked with the pod and the container (init containers first); when its pods are gone (the controller deletes
    them at the Job's deadline), the last events of the Job and of its pods instead.
  - Fails, naming the Job, when it does not exist, is deleted (or deleted and made again) before it ends, or has not
    ended at O(timeout) (with its pods' phases and the containers that wait or ended with an error).
options:
  names:
    description:
      - The Jobs to wait for. Each must exist when the module starts (it was just applied).
    type: list
    elements: str
    required: true
attributes:
  check_mode:
    support: full
    details: Waits for nothing and returns no Jobs (in check mode the roles apply their Jobs as a dry run).
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - kubess.stateful.k8s_module
  - kubess.stateful.job_wait
notes:
  - The credentials need C(list) and C(watch) on Jobs, C(list) on pods and events, and C(get) on C(pods/log), in the
    namespace.
seealso:
  - module: kubess.stateful.statefulset_wait
    description: The same wait for a StatefulSet's ordinals.
"""

EXAMPLES = r"""
- name: Start the backup Job
  kubernetes.core.k8s:
    definition: "{{ backup_job }}"

- name: Wait until the backup Job has ended
  kubess.stateful.job_wait:
    namespace: databases
    names: ["{{ backup_job.metadata.name }}"]
    failure: No backup was stored.
    timeout: 3600
"""

RETURN = r"""
jobs:
  description:
    - The Jobs, in the order of O(names), each with its C(state) (C(Complete), C(Failed), or C(Running) when another
      failed first or the deadline came) and its controller's C(reason) and C(message). Empty in check mode.
  returned: success, and when a Job failed or had not ended at the deadline
  type: list
  elements: dict
  sample: [{"name": "pxc-backup-1764842400", "state": "Complete", "reason": "CompletionsReached", "message": ""}]
seconds:
  description: How long the wait took.
  returned: success
  type: float
  sample: 12.5
failed_jobs:
  description: On failure, the names of the Jobs that failed.
  returned: when a Job failed
  type: list
  elements: str
  sample: ["pxc-backup-1764842400"]
job:
  description: On failure at the deadline, or for a Job that does not exist or was deleted, its name.
  returned: failure
  type: str
  sample: pxc-backup-1764842400
"""

from ansible_collections.kubess.stateful.plugins.module_utils._job_wait import WAIT_OPTIONS, JobWait, wait_option_problem
from ansible_collections.kubess.stateful.plugins.module_utils._k8s_module import finish, start, with_auth
from ansible_collections.kubess.stateful.plugins.module_utils._watch import build_api


def argspec():
    return with_auth(dict(WAIT_OPTIONS, names=dict(type="list", elements="str", required=True)))


def check_options(params):
    """The first option that is wrong, as a message, or None: before anything is read."""
    problem = wait_option_problem(params)
    if problem:
        return problem
    if not params["names"] or any(not name.strip() for name in params["names"]):
        return "names must list at least one Job, and no empty name, got {0!r}".format(params["names"])
    return None


def main():
    module, api, started = start(argspec(), check_options, build_api)
    params = module.params
    wait = JobWait(api, params["namespace"], params["names"], params["failure"], params["log_lines"],
                   started + params["timeout"], params["timeout"])
    finish(module, lambda: wait.run(check_mode=module.check_mode), "namespace {0}".format(params["namespace"]))


if __name__ == "__main__":
    main()
