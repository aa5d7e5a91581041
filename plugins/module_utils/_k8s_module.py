# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""How the collection's StatefulSet modules start: the module object, the checks of their shared options, the API."""

import copy
import time

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.kubernetes.core.plugins.module_utils.ansiblemodule import AnsibleModule
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException
from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import (
    ApiFailure,
    ModuleFailure,
    TransientApiError,
)
from ansible_collections.kubess.stateful.plugins.module_utils._watch import HAS_K8S, K8S_IMP_ERR


def with_auth(options):
    """A module's argument spec: kubernetes.core's connection options, then the module's own."""
    args = copy.deepcopy(AUTH_ARG_SPEC)
    args.update(copy.deepcopy(options))
    return args


def set_argspec(options):
    """The argument spec of a module that works on one StatefulSet: the connection options, the set's ``name`` and
    ``namespace`` (documented by the doc fragment kubess.stateful.statefulset), then the module's own."""
    return with_auth(dict(name=dict(type="str", required=True), namespace=dict(type="str", required=True), **options))


def finish(module, call, what):
    """Exit with ``call()``'s result, or fail saying what went wrong: the module's own error with its result fields, a
    request the API refused (naming ``what``), an API that could not be reached."""
    try:
        result = call()
    except ModuleFailure as err:
        module.fail_json(msg=err.msg, **err.result)
    except ApiFailure as err:
        module.fail_json(msg="{0}: the API refused a request: {1}".format(what, err))
    except TransientApiError as err:
        module.fail_json(msg="The Kubernetes API could not be reached: {0}".format(err))
    except Exception as err:  # pylint: disable=broad-except
        module.fail_json(msg="{0}: stopped on an unexpected error: {1}".format(what, err))
    module.exit_json(**result)


def check_set_options(params):
    """The first of the shared checks that fails (timeout, replicas, stall timeout, name, namespace), as a message, or
    None."""
    if params["timeout"] <= 0:
        return "timeout must be a positive number of seconds, got {0}".format(params["timeout"])
    if params.get("replicas") is not None and params["replicas"] < 0:
        return "replicas must be 0 or more, got {0}".format(params["replicas"])
    if params.get("controller_stall_timeout") is not None and params["controller_stall_timeout"] < 0:
        return "controller_stall_timeout must be 0 (no check) or a positive number of seconds, got {0}".format(
            params["controller_stall_timeout"])
    for option in ("name", "namespace"):
        if not params[option].strip():
            return "{0} must not be empty".format(option)
    return None


def start(argument_spec, validate, build_api):
    """The module, its API (``build_api(get_client, deadline)``) and when it started; the module fails here on a
    value ``validate`` refuses or an API it cannot reach before its timeout."""
    started = time.monotonic()
    module = AnsibleK8SModule(module_class=AnsibleModule, argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_K8S:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=K8S_IMP_ERR)
    problem = validate(module.params)
    if problem:
        module.fail_json(msg=problem)
    try:
        api = build_api(lambda: get_api_client(module), started + module.params["timeout"])
    except CoreException as err:
        module.fail_from_exception(err)
    except Exception as err:  # pylint: disable=broad-except
        module.fail_json(
            msg="Could not connect to the Kubernetes API: {0}. Check kubeconfig, context and that the API server is up.".format(err)
        )
    return module, api, started
