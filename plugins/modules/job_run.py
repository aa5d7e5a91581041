#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: job_run
short_description: Run a role's Jobs, replacing one left failed or made for something else, and wait until they end
version_added: 0.2.0
author:
  - kubess.stateful maintainers (@kubess)
description:
  - Reads the Job of each of O(definitions) in O(namespace). A Job that cannot serve is deleted first, and waited
    for until it and its pods are gone. One cannot serve when it failed, is being deleted, has an annotation of its
    definition with another value (the roles of this collection annotate a restore Job with the backup it
    restores), or was applied by this module from another spec (its annotation C(kubess.io/job-spec-sha256), the
    digest of the spec, differs).
  - Then every Job that is not there is applied (server-side apply under O(field_manager)), with that digest. A Job
    that is there and can serve (running, or complete) is left as it is; its pod template cannot change.
  - Then waits for every Job as M(kubess.stateful.job_wait) does, and fails the same way, naming a failed Job with
    the end of its log. O(timeout) counts the deletion, the applies and the wait together.
  - The roles of this collection run their backup and restore Jobs, and WordPress's content Job, with it. A run of
    the same restore again finds its Jobs complete and changes nothing.
options:
  definitions:
    description:
      - The Jobs, as manifests (C(batch/v1) Job, with C(metadata.name); C(metadata.namespace), when given, must be
        O(namespace)).
    type: list
    elements: dict
    required: true
  field_manager:
    description:
      - The field manager of the server-side apply.
    type: str
    default: kubess-stateful
attributes:
  check_mode:
    support: full
    details: >-
      Reads the Jobs and returns what a real run would delete and start; applies each Job that is not there as a
      dry run (the API checks it), and waits for nothing. A Job that would replace one still there is not applied
      (its template is immutable).
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - kubess.stateful.k8s_module
  - kubess.stateful.job_wait
notes:
  - The credentials need C(get), C(list), C(watch), C(patch), C(create) and C(delete) on Jobs, C(list) on pods and
    events, and C(get) on C(pods/log), in the namespace.
seealso:
  - module: kubess.stateful.job_wait
    description: The wait alone, for Jobs applied by another task.
"""

EXAMPLES = r"""
- name: Restore the first member's data directory from a backup (again the same backup changes nothing)
  kubess.stateful.job_run:
    namespace: databases
    definitions:
      - "{{ restore_job }}"
    field_manager: kubess-pxc
    failure: The StatefulSet was not made.
    timeout: 3600
"""

RETURN = r"""
started:
  description: The Jobs applied by this run, new or replacing one deleted (in check mode, those a real run would).
  returned: always
  type: list
  elements: str
  sample: ["pxc-restore"]
deleted:
  description: The Jobs deleted first, each with why it could not serve (in check mode, those a real run would).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "pxc-restore", "reason": "it failed (BackoffLimitExceeded)"}]
jobs:
  description:
    - Every Job of O(definitions), in order, with its C(state) (C(Complete), C(Failed), or C(Running)) and its
      controller's C(reason) and C(message), as M(kubess.stateful.job_wait) returns them. Empty in check mode.
  returned: success, and when a Job failed or had not ended at the deadline
  type: list
  elements: dict
  sample: [{"name": "pxc-restore", "state": "Complete", "reason": "CompletionsReached", "message": ""}]
seconds:
  description: How long the run took, the deletion and the wait included.
  returned: success
  type: float
  sample: 48.2
failed_jobs:
  description: On failure, the Jobs that failed.
  returned: when a Job failed
  type: list
  elements: str
  sample: ["pxc-restore"]
job:
  description: On failure at the deadline, or for a Job deleted before it ended, its name.
  returned: failure
  type: str
  sample: pxc-restore
"""

from ansible_collections.kubess.stateful.plugins.module_utils._job_run import JobRun, definition_problem
from ansible_collections.kubess.stateful.plugins.module_utils._job_wait import WAIT_OPTIONS, JobWait, wait_option_problem
from ansible_collections.kubess.stateful.plugins.module_utils._k8s_module import finish, start, with_auth
from ansible_collections.kubess.stateful.plugins.module_utils._watch import build_api


def argspec():
    return with_auth(dict(
        WAIT_OPTIONS,
        definitions=dict(type="list", elements="dict", required=True),
        field_manager=dict(type="str", default="kubess-stateful"),
    ))


def check_options(params):
    """The first option that is wrong, as a message, or None: before anything is read or written."""
    problem = wait_option_problem(params)
    if problem:
        return problem
    if not params["field_manager"].strip():
        return "field_manager must not be empty"
    if not params["definitions"]:
        return "definitions must list at least one Job"
    names = set()
    for index, definition in enumerate(params["definitions"]):
        problem = definition_problem(index, definition, params["namespace"])
        if problem:
            return problem
        if definition["metadata"]["name"] in names:
            return "definitions[{0}] names the Job {1} a second time".format(index, definition["metadata"]["name"])
        names.add(definition["metadata"]["name"])
    return None


def main():
    module, api, started = start(argspec(), check_options, build_api)
    params = module.params
    wait = JobWait(api, params["namespace"], [d["metadata"]["name"] for d in params["definitions"]],
                   params["failure"], params["log_lines"], started + params["timeout"], params["timeout"])
    run = JobRun(wait, params["definitions"], params["field_manager"])
    finish(module, lambda: run.run(check_mode=module.check_mode), "namespace {0}".format(params["namespace"]))


if __name__ == "__main__":
    main()
