"""The module's argument handling: what main() accepts, converts, defaults and refuses, and what it hands the waiter.

The module is run in-process with ``patch_module_args``; the connection and the waiter are replaced by
recorders, so every test stops at the module's own boundary (the waiter's behaviour has its own tests).
"""

from __future__ import annotations

import pytest
from module_runner import WaiterStandIn, run_main, stop_at_exit

from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import ModuleFailure
from ansible_collections.kubess.stateful.plugins.modules import statefulset_wait as module


class Recorder(WaiterStandIn):
    """Stands in for StatefulSetWaiter: records how it was built and which entry point ran."""

    built: dict = {}
    ran: list = []
    error: ModuleFailure | None = None

    def __init__(self, api, name, namespace, **kwargs):
        Recorder.built = dict(api=api, name=name, namespace=namespace, **kwargs)

    def _result(self, entry):
        Recorder.ran.append(entry)
        if Recorder.error is not None:
            raise Recorder.error
        return {"changed": False, "name": Recorder.built["name"], "entry": entry}


@pytest.fixture
def run(monkeypatch):
    stop_at_exit(monkeypatch)
    monkeypatch.setattr(module, "StatefulSetWaiter", Recorder)
    api = object()
    monkeypatch.setattr(module, "build_api", lambda get_client, deadline: api)
    Recorder.built, Recorder.ran, Recorder.error = {}, [], None

    def _run(args):
        return run_main(module, args)

    _run.api = api
    return _run


def test_defaults_reach_the_waiter(run):
    outcome, result = run({"name": "web", "namespace": "demo"})
    assert outcome == "exit", result
    built = Recorder.built
    assert built["api"] is run.api and built["name"] == "web" and built["namespace"] == "demo"
    assert {k: built[k] for k in module.WAITER_OPTIONS} == {
        "replicas": None,
        "timeout": 300,
        "wait_for_set": False,
        "wait_for_update": True,
        "fail_fast": True,
        "controller_stall_timeout": 60,
    }
    assert isinstance(built["started"], float)
    assert Recorder.ran == ["wait"] and result["entry"] == "wait"


def test_values_are_converted_to_their_types(run):
    outcome, result = run({"name": "web", "namespace": "demo", "timeout": "120", "replicas": "3",
                           "wait_for_set": "yes", "wait_for_update": "no", "fail_fast": "false",
                           "controller_stall_timeout": "0"})
    assert outcome == "exit", result
    built = Recorder.built
    assert (built["timeout"], built["replicas"]) == (120, 3)
    assert (built["wait_for_set"], built["wait_for_update"], built["fail_fast"]) == (True, False, False)
    assert built["controller_stall_timeout"] == 0


def test_check_mode_looks_once_instead_of_waiting(run):
    outcome, result = run({"name": "web", "namespace": "demo", "_ansible_check_mode": True})
    assert outcome == "exit" and Recorder.ran == ["check"], result


@pytest.mark.parametrize(
    "args, option, words",
    [
        ({"namespace": "demo"}, "name", "missing required arguments"),
        ({"name": "web"}, "namespace", "missing required arguments"),
        ({"name": "web", "namespace": "demo", "timeout": "soon"}, "timeout", "int"),
        ({"name": "web", "namespace": "demo", "replicas": "three"}, "replicas", "int"),
        ({"name": "web", "namespace": "demo", "wait_for_set": "perhaps"}, "wait_for_set", "bool"),
        ({"name": "web", "namespace": "demo", "fail_fast": "sometimes"}, "fail_fast", "bool"),
        ({"name": "web", "namespace": "demo", "timeot": 30}, "timeot", "Unsupported parameters"),
        ({"name": "web", "namespace": "demo", "timeout": 0}, "timeout", "must be a positive number of seconds, got 0"),
        ({"name": "web", "namespace": "demo", "timeout": -5}, "timeout", "must be a positive number of seconds, got -5"),
        ({"name": "web", "namespace": "demo", "replicas": -1}, "replicas", "must be 0 or more, got -1"),
        ({"name": "web", "namespace": "demo", "controller_stall_timeout": "1m"}, "controller_stall_timeout", "int"),
        ({"name": "web", "namespace": "demo", "controller_stall_timeout": -1}, "controller_stall_timeout",
         "must be 0 (no check) or a positive number of seconds, got -1"),
        ({"name": "  ", "namespace": "demo"}, "name", "must not be empty"),
        ({"name": "web", "namespace": ""}, "namespace", "must not be empty"),
    ],
)
def test_bad_input_is_refused_naming_the_option(run, args, option, words):
    outcome, result = run(args)
    assert outcome == "fail", result
    assert option in result["msg"] and words in result["msg"], result["msg"]
    assert Recorder.ran == []  # refused before any wait


def test_replicas_zero_is_accepted(run):
    outcome, result = run({"name": "web", "namespace": "demo", "replicas": 0})
    assert outcome == "exit", result
    assert Recorder.built["replicas"] == 0


def test_the_waiters_error_becomes_fail_json_with_its_fields(run):
    Recorder.error = ModuleFailure("StatefulSet demo/web: ordinal 1 cannot become Ready", reason="CrashLoopBackOff",
                                   ordinal=1, pod="web-1")
    outcome, result = run({"name": "web", "namespace": "demo"})
    assert outcome == "fail"
    assert result["msg"] == "StatefulSet demo/web: ordinal 1 cannot become Ready"
    assert (result["reason"], result["ordinal"], result["pod"]) == ("CrashLoopBackOff", 1, "web-1")
