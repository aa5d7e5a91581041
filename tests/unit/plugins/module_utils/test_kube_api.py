# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import ApiFailure, TransientApiError
from ansible_collections.kubess.stateful.plugins.module_utils._watch import KubeApi, ns_path, retry


class Resource:  # pylint: disable=too-few-public-methods
    def __init__(self, name, namespaced):
        self.name = name
        self.namespaced = namespaced


class Resources:  # pylint: disable=too-few-public-methods
    SERVED = {
        ("v1", "ConfigMap"): Resource("configmaps", True),
        ("apps/v1", "StatefulSet"): Resource("statefulsets", True),
        ("v1", "PersistentVolume"): Resource("persistentvolumes", False),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"): Resource("clusterroles", False),
    }

    def get(self, api_version, kind):
        return self.SERVED[(api_version, kind)]


class Client:  # pylint: disable=too-few-public-methods
    resources = Resources()


@pytest.mark.parametrize("api_version, kind, path", [
    ("v1", "ConfigMap", "/api/v1/namespaces/db/configmaps"),
    ("apps/v1", "StatefulSet", "/apis/apps/v1/namespaces/db/statefulsets"),
    ("v1", "PersistentVolume", "/api/v1/persistentvolumes"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "/apis/rbac.authorization.k8s.io/v1/clusterroles"),
])
def test_a_kind_gets_the_path_discovery_gives_it_in_the_namespace_only_when_namespaced(api_version, kind, path):
    api = KubeApi(Client())
    assert api.resource_path(api_version, kind, "db") == path
    assert api.requests == 1


def test_the_cluster_collection_path_has_no_namespace():
    assert ns_path("v1", None, "nodes") == "/api/v1/nodes"
    assert ns_path("batch/v1", "db", "jobs") == "/apis/batch/v1/namespaces/db/jobs"


def failing(*errors):
    """A call that raises each of ``errors`` in turn, then answers "done"; the calls made are counted."""
    calls = []

    def call():
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "done"
    return call, calls


def test_a_404_is_none_only_when_gone_is_ok():
    call, calls = failing(ApiFailure(404, "not found"))
    assert retry(call, deadline=10.0, clock=lambda: 0.0, pause=lambda _: None, gone_ok=True) is None
    assert len(calls) == 1
    call, calls = failing(ApiFailure(404, "not found"))
    with pytest.raises(ApiFailure, match="HTTP 404"):
        retry(call, deadline=10.0, clock=lambda: 0.0, pause=lambda _: None)
    assert len(calls) == 1


def test_other_refusals_are_raised_even_when_gone_is_ok():
    call, calls = failing(ApiFailure(403, "forbidden"))
    with pytest.raises(ApiFailure, match="HTTP 403"):
        retry(call, deadline=10.0, clock=lambda: 0.0, pause=lambda _: None, gone_ok=True)
    assert len(calls) == 1


def test_an_unreachable_api_is_retried_until_it_answers_then_a_404_is_none():
    pauses = []
    call, calls = failing(TransientApiError("refused"), TransientApiError("refused"), ApiFailure(404, "gone"))
    assert retry(call, deadline=10.0, clock=lambda: 0.0, pause=pauses.append, gone_ok=True) is None
    assert len(calls) == 3
    assert pauses == [0.2, 0.4]
