"""kubess.stateful.k8s_delete against an API that keeps objects in memory: what is deleted, in which order, and what
is refused before anything is."""

from __future__ import annotations

import json
import time

import pytest

from ansible_collections.kubess.stateful.plugins.module_utils._delete import Deletion, entry_problem
from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import ApiFailure, ModuleFailure
from ansible_collections.kubess.stateful.plugins.modules import k8s_delete as module

PLURALS = {"StatefulSet": ("apps/v1", "statefulsets"), "Service": ("v1", "services"),
           "ConfigMap": ("v1", "configmaps"), "PersistentVolumeClaim": ("v1", "persistentvolumeclaims")}
OWNED = ["app.kubernetes.io/instance=pxc", "app.kubernetes.io/managed-by=kubess.stateful"]


def path_of(kind):
    version, plural = PLURALS[kind]
    prefix = "/api/v1" if version == "v1" else "/apis/" + version
    return "{0}/namespaces/db/{1}".format(prefix, plural)


class Stream:
    """A watch on one object by name: it ends at once for a held object (a finalizer); otherwise it reports the
    object DELETED, and only then does it leave the API."""

    def __init__(self, api, path, name):
        self.api, self.path, self.name = api, path, name

    def stream(self, amt=None, decode_content=False):
        if self.name in self.api.held or self.name not in self.api.objects[self.path]:
            return
        self.api.objects[self.path].pop(self.name)
        self.api.sent.append(("GONE", self.name))
        yield (json.dumps({"type": "DELETED", "object": {"metadata": {"name": self.name, "resourceVersion": "9"}}})
               + "\n").encode()

    def close(self):
        pass


class FakeApi:
    """Objects by collection path; each has labels. A DELETE marks the object deleted; it leaves when the watch
    reports it DELETED, unless held (a finalizer)."""

    def __init__(self, held=()):
        labels = dict(s.split("=", 1) for s in OWNED)
        other = {"app.kubernetes.io/instance": "web"}
        self.objects = {path_of(kind): {} for kind in PLURALS}
        for kind, name, lab in [("StatefulSet", "pxc", labels), ("Service", "pxc", labels),
                                ("Service", "pxc-primary", labels), ("Service", "web", other),
                                ("ConfigMap", "pxc-config", {}), ("PersistentVolumeClaim", "datadir-pxc-0", labels)]:
            self.objects[path_of(kind)][name] = {"metadata": {"name": name, "labels": dict(lab)}}
        self.held = set(held)
        self.sent = []

    def resource_path(self, api_version, kind, namespace):
        if kind not in PLURALS or PLURALS[kind][0] != api_version:
            raise ApiFailure(404, "the API serves no {0} of {1}".format(kind, api_version))
        return path_of(kind).replace("/db/", "/{0}/".format(namespace))

    def list(self, path, query=(), timeout=30):
        query = dict(query)
        if path not in self.objects:  # one object by name
            collection, name = path.rsplit("/", 1)
            if name not in self.objects[collection]:
                raise ApiFailure(404, "not found")
            return self.objects[collection][name]
        if "fieldSelector" in query:
            name = query["fieldSelector"].split("=", 1)[1]
            items = [self.objects[path][name]] if name in self.objects[path] else []
            return {"metadata": {"resourceVersion": "1"}, "items": items}
        wanted = dict(s.split("=", 1) for s in query["labelSelector"].split(","))
        items = [o for o in self.objects[path].values()
                 if all(o["metadata"]["labels"].get(k) == v for k, v in wanted.items())]
        return {"metadata": {"resourceVersion": "1"}, "items": items}

    def watch(self, path, query, resource_version, timeout_seconds, read_timeout):
        return Stream(self, path, dict(query)["fieldSelector"].split("=", 1)[1])

    def send(self, method, path, body=None, query=(), content_type=None, timeout=30):
        collection, name = path.rsplit("/", 1)
        self.sent.append((method, name, body["propagationPolicy"]))
        if name not in self.objects[collection]:
            raise ApiFailure(404, "not found")
        meta = self.objects[collection][name]["metadata"]
        meta["deletionTimestamp"] = "2026-12-03T10:00:00Z"
        if name in self.held:
            meta["finalizers"] = ["foregroundDeletion"]
        return {}


ENTRIES = [
    {"api_version": "apps/v1", "kind": "StatefulSet", "selectors": OWNED},
    {"api_version": "v1", "kind": "Service", "selectors": OWNED},
    {"api_version": "v1", "kind": "ConfigMap", "name": "pxc-config"},
]


def delete(api, objects=None, seconds=10.0, wait=True):
    return Deletion(api, "db", ENTRIES if objects is None else objects, "Foreground", wait, time.monotonic() + seconds)


def test_each_entry_is_deleted_and_gone_before_the_next():
    api = FakeApi()
    res = delete(api).run()
    assert api.sent == [
        ("DELETE", "pxc", "Foreground"), ("GONE", "pxc"),
        ("DELETE", "pxc", "Foreground"), ("DELETE", "pxc-primary", "Foreground"), ("GONE", "pxc"), ("GONE", "pxc-primary"),
        ("DELETE", "pxc-config", "Foreground"), ("GONE", "pxc-config"),
    ]
    assert [(d["kind"], d["name"]) for d in res["deleted"]] == [
        ("StatefulSet", "pxc"), ("Service", "pxc"), ("Service", "pxc-primary"), ("ConfigMap", "pxc-config")]
    assert res["changed"]
    # What the selectors do not match stays: another release's Service, and the claim (not in the list).
    assert "web" in api.objects[path_of("Service")] and "datadir-pxc-0" in api.objects[path_of("PersistentVolumeClaim")]


def test_nothing_left_is_no_change():
    api = FakeApi()
    delete(api).run()
    api.sent.clear()
    res = delete(api).run()
    assert api.sent == [] and res["deleted"] == [] and not res["changed"]


def test_check_mode_lists_what_would_go_and_deletes_nothing():
    api = FakeApi()
    res = delete(api).run(check_mode=True)
    assert api.sent == []
    assert res["changed"] and [d["name"] for d in res["deleted"]] == ["pxc", "pxc", "pxc-primary", "pxc-config"]


def test_without_wait_the_next_entry_does_not_wait_for_the_last():
    api = FakeApi()
    delete(api, wait=False).run()
    assert [s for s in api.sent if s[0] == "GONE"] == []
    assert [s[1] for s in api.sent] == ["pxc", "pxc", "pxc-primary", "pxc-config"]


def test_an_object_still_there_at_the_deadline_is_named_and_the_rest_is_left():
    api = FakeApi(held={"pxc-primary"})
    with pytest.raises(ModuleFailure) as err:
        delete(api, seconds=0.5).run()
    assert "Service db/pxc-primary was still there at the deadline (finalizers: foregroundDeletion)" in err.value.msg
    assert err.value.result["kind"] == "Service" and err.value.result["name"] == "pxc-primary"
    assert [d["kind"] for d in err.value.result["deleted"]] == ["StatefulSet"]
    # The ConfigMap, after the stuck entry, was not deleted.
    assert "pxc-config" in api.objects[path_of("ConfigMap")]


def test_an_object_gone_between_the_read_and_the_delete_is_not_an_error():
    api = FakeApi()
    original = api.send

    def vanish_first(method, path, body=None, **kwargs):
        collection, name = path.rsplit("/", 1)
        api.objects[collection].pop(name, None)
        return original(method, path, body=body, **kwargs)

    api.send = vanish_first
    res = delete(api, [ENTRIES[2]]).run()
    assert [d["name"] for d in res["deleted"]] == ["pxc-config"]


def test_a_kind_the_api_does_not_serve_fails_naming_it():
    with pytest.raises(ApiFailure, match="serves no Widget of v1"):
        delete(FakeApi(), [{"api_version": "v1", "kind": "Widget", "name": "w"}]).run()


@pytest.mark.parametrize("entry, problem", [
    ({"api_version": "v1", "kind": "Service"}, "objects[0] (Service) names neither a name nor selectors"),
    ({"api_version": "v1", "kind": "Service", "selectors": []}, "names neither a name nor selectors"),
    ({"api_version": "v1", "kind": "Service", "name": " "}, "objects[0].name must be a non-empty string"),
    ({"api_version": "v1", "kind": "Service", "selectors": ["app"]}, "objects[0].selectors must be a list of key=value"),
    ({"api_version": "", "kind": "Service", "name": "x"}, "objects[0].api_version must be a non-empty string"),
    ({"api_version": "v1", "name": "x"}, "objects[0].kind must be a non-empty string"),
    ({"api_version": "v1", "kind": "Service", "name": "x", "label_selectors": ["a=b"]}, "unknown keys label_selectors"),
    ("Service", "objects[0] must be a mapping"),
    ({"api_version": "v1", "kind": "Service", "name": "x", "selectors": ["a=b"]},
     "objects[0] (Service) gives both a name and selectors"),
])
def test_a_bad_entry_is_refused_naming_it(entry, problem):
    assert problem in entry_problem(0, entry)


def test_the_module_checks_every_entry_before_anything():
    args = dict(namespace="db", objects=ENTRIES + [{"api_version": "v1", "kind": "Secret"}], timeout=300)
    assert "objects[3] (Secret) names neither a name nor selectors" in module.check_options(args)
    assert module.check_options(dict(args, objects=ENTRIES)) is None
    assert "timeout must be a positive" in module.check_options(dict(args, objects=ENTRIES, timeout=0))
    assert module.check_options(dict(args, objects=ENTRIES, namespace=" ")) == "namespace must not be empty"
