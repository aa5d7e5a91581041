"""stack_info's argument handling: what main() accepts, converts and refuses, and what it hands the reader. The module
runs in-process with ``patch_module_args``; the connection and the reader are replaced by recorders."""

from __future__ import annotations

import pytest
from module_runner import run_main, stop_at_exit

from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import ApiFailure
from ansible_collections.kubess.stateful.plugins.modules import stack_info as module


@pytest.fixture
def run(monkeypatch):
    calls = []

    def collect(api, namespace, names, members, deadline, metrics_deadline):
        calls.append(dict(api=api, namespace=namespace, names=names, members=members, deadline=deadline,
                          metrics_deadline=metrics_deadline))
        if namespace == "refused":
            raise ApiFailure(403, "persistentvolumes is forbidden")
        return dict(statefulsets=[], deployments=[], autoscalers=[])

    stop_at_exit(monkeypatch)
    monkeypatch.setattr(module, "collect", collect)
    api = object()
    monkeypatch.setattr(module, "build_api", lambda get_client, deadline: api)

    def _run(args):
        return run_main(module, args)

    _run.api, _run.calls = api, calls
    return _run


def test_defaults_read_every_set_without_asking_the_members(run):
    outcome, result = run({"namespace": "kubess"})
    assert outcome == "exit" and result["changed"] is False, result
    assert result["statefulsets"] == [] and result["autoscalers"] == [] and result["deployments"] == []
    (call,) = run.calls
    assert call["api"] is run.api and (call["namespace"], call["names"], call["members"]) == ("kubess", [], False)
    assert call["metrics_deadline"] is None


def test_values_are_converted_and_check_mode_reads_the_same(run):
    outcome, result = run({"namespace": "kubess", "names": "etcd,pxc", "members": "yes", "timeout": "30",
                           "metrics_timeout": "20", "_ansible_check_mode": True})
    assert outcome == "exit" and result["changed"] is False, result
    call = run.calls[0]
    assert (call["names"], call["members"]) == (["etcd", "pxc"], True)
    assert call["deadline"] - call["metrics_deadline"] == pytest.approx(10)


@pytest.mark.parametrize("args, message", [
    ({"namespace": " "}, "namespace must not be empty"),
    ({"namespace": "kubess", "timeout": 0}, "timeout must be a positive number of seconds, got 0"),
    ({"namespace": "kubess", "names": ["etcd", ""]}, "names must not hold an empty name"),
    ({"namespace": "kubess", "metrics_timeout": -1},
     "metrics_timeout must be 0 (no wait) or a positive number of seconds, got -1"),
])
def test_bad_options_are_refused_before_any_read(run, args, message):
    outcome, result = run(args)
    assert outcome == "fail" and result["msg"] == message and run.calls == []


def test_a_refused_read_names_the_namespace(run):
    outcome, result = run({"namespace": "refused"})
    assert outcome == "fail" and result["msg"].startswith("namespace refused: the API refused a request: HTTP 403")
