"""Volume names, NFS paths, conflict checks and quantities of plugins/filter/volume_paths.py."""

from __future__ import annotations

import copy

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubess.stateful.plugins.filter import volume_paths as vp

ETCD = {"statefulset": "etcd", "namespace": "kubess", "template": "data", "replicas": 3, "size": "1Gi",
        "access_modes": ["ReadWriteOnce"], "storage_class": "kubess-nfs", "owner": 65532, "group": 65532,
        "mode": "0700"}
CONTENT = {"claim": "wordpress-content", "namespace": "kubess", "size": "5Gi", "access_modes": ["ReadWriteMany"],
           "storage_class": "kubess-nfs", "owner": 33, "group": 33, "mode": "0770"}


def test_filters_are_registered():
    assert set(vp.FilterModule().filters()) == {
        "nfs_volume_paths", "nfs_directories", "nfs_volume_check", "k8s_quantity", "volume_layout_problems",
        "directories_to_fix",
    }


@pytest.mark.parametrize(
    "given, canonical",
    [
        ("1Gi", "1Gi"),
        ("1024Mi", "1Gi"),
        ("1536Mi", "1536Mi"),
        ("1.5Gi", "1536Mi"),
        ("0.5Gi", "512Mi"),
        ("1000M", "1G"),
        ("1500M", "1500M"),
        ("1000000", "1M"),
        ("512", "512"),
        ("1536", "1536"),
        ("1.5Ki", "1536"),
        (" 5Gi ", "5Gi"),
        (10, "10"),
        ("2Ti", "2Ti"),
        ("2048Gi", "2Ti"),
    ],
)
def test_quantity_canonical_form(given, canonical):
    assert vp.k8s_quantity(given) == canonical


@pytest.mark.parametrize("bad", ["0", "0Gi", "-1Gi", "1GB", "Gi", "", "1.5", "0.1", "1e3", "one", None, "1 Gi"])
def test_quantity_rejects(bad):
    with pytest.raises(AnsibleFilterError):
        vp.k8s_quantity(bad)


def test_statefulset_volume_per_ordinal_names_and_paths():
    records = vp.nfs_volume_paths([ETCD, CONTENT], "/srv/nfs/kubess")
    assert [(r["pv"], r["pvc"], r["namespace"], r["path"]) for r in records] == [
        ("kubess-data-etcd-0", "data-etcd-0", "kubess", "/srv/nfs/kubess/kubess/data-etcd-0"),
        ("kubess-data-etcd-1", "data-etcd-1", "kubess", "/srv/nfs/kubess/kubess/data-etcd-1"),
        ("kubess-data-etcd-2", "data-etcd-2", "kubess", "/srv/nfs/kubess/kubess/data-etcd-2"),
        ("kubess-wordpress-content", "wordpress-content", "kubess", "/srv/nfs/kubess/kubess/wordpress-content"),
    ]
    assert [r["ordinal"] for r in records] == [0, 1, 2, None]
    assert [r["kind"] for r in records] == ["statefulset"] * 3 + ["shared"]
    assert records[0]["statefulset"] == "etcd" and records[0]["volume"] is None
    assert records[3]["volume"] == "wordpress-content" and records[3]["statefulset"] is None
    assert records[3]["access_modes"] == ["ReadWriteMany"]


def test_defaults_template_access_modes_and_root():
    records = vp.nfs_volume_paths([{"statefulset": "db", "namespace": "ns", "replicas": "2", "size": "1024Mi"},
                                   {"claim": "shared", "namespace": "ns", "size": "1Gi"}], storage_class="std")
    assert [r["pvc"] for r in records] == ["data-db-0", "data-db-1", "shared"]
    assert records[0]["path"] == "/srv/nfs/kubess/ns/data-db-0"
    assert records[0]["size"] == "1Gi"
    assert records[0]["access_modes"] == ["ReadWriteOnce"]
    assert records[2]["access_modes"] == ["ReadWriteMany"]
    assert [r["storage_class"] for r in records] == ["std"] * 3
    assert [(r["owner"], r["group"], r["mode"]) for r in records] == [(0, 0, "0750")] * 3


def test_each_entry_keeps_its_storage_class_and_owner():
    records = vp.nfs_volume_paths([ETCD, CONTENT], storage_class="other")
    assert {r["storage_class"] for r in records} == {"kubess-nfs"}
    assert (records[0]["owner"], records[0]["group"], records[0]["mode"]) == (65532, 65532, "0700")
    assert (records[3]["owner"], records[3]["group"], records[3]["mode"]) == (33, 33, "0770")


def test_nfs_directories_are_relative_with_their_owners():
    assert vp.nfs_directories([dict(ETCD, replicas=2), CONTENT], "/exports/") == [
        {"path": "kubess/data-etcd-0", "owner": 65532, "group": 65532, "mode": "0700"},
        {"path": "kubess/data-etcd-1", "owner": 65532, "group": 65532, "mode": "0700"},
        {"path": "kubess/wordpress-content", "owner": 33, "group": 33, "mode": "0770"},
    ]


def test_export_root_is_normalised():
    records = vp.nfs_volume_paths([dict(ETCD, replicas=1)], "/exports//kubess/")
    assert records[0]["path"] == "/exports/kubess/kubess/data-etcd-0"


def test_growing_replicas_adds_records_and_keeps_the_first_ones():
    three = vp.nfs_volume_paths([ETCD])
    five = vp.nfs_volume_paths([dict(ETCD, replicas=5)])
    assert five[:3] == three
    assert [r["pvc"] for r in five[3:]] == ["data-etcd-3", "data-etcd-4"]


def test_nothing_given_gives_nothing():
    assert vp.nfs_volume_paths(None) == []
    assert vp.nfs_volume_paths([]) == []


@pytest.mark.parametrize(
    "volumes, root, message",
    [
        ([{"namespace": "ns", "replicas": 1, "size": "1Gi"}], "/r", "volumes[0] must name either a statefulset or a claim"),
        ([dict(ETCD, claim="x")], "/r", "volumes[0] must name either a statefulset or a claim"),
        ([dict(ETCD, replicas=0)], "/r", "volumes[0].replicas must be at least 1"),
        ([dict(ETCD, replicas=-1)], "/r", "volumes[0].replicas must be at least 1"),
        ([dict(ETCD, replicas="three")], "/r", "volumes[0].replicas must be an integer"),
        ([dict(ETCD, replicas=True)], "/r", "volumes[0].replicas must be an integer"),
        ([dict(ETCD, size="0")], "/r", "volumes[0].size: '0' is not a positive storage quantity"),
        ([dict(CONTENT, size="0.1Ki")], "/r", "volumes[0].size: '0.1Ki' is not a whole number of bytes"),
        ([dict(ETCD, access_modes="ReadWriteOnce")], "/r", "volumes[0].access_modes must be a list"),
        ([dict(ETCD, owner=-1)], "/r", "volumes[0].owner must be a numeric id"),
        ([dict(ETCD, group="www")], "/r", "volumes[0].group must be a numeric id"),
        ([dict(ETCD, mode="rwx")], "/r", "volumes[0].mode must be an octal string"),
        (["etcd"], "/r", "volumes[0] must be a dictionary"),
        ([{"claim": "x", "size": "1Gi"}], "/r", "volumes[0] has no 'namespace'"),
        ([ETCD], "relative/root", "export root must be an absolute path"),
    ],
)
def test_bad_descriptions_fail_with_the_place(volumes, root, message):
    with pytest.raises(AnsibleFilterError, match=message.replace("[", r"\[").replace("]", r"\]")):
        vp.nfs_volume_paths(volumes, root)


# --- nfs_volume_check --------------------------------------------------------------------------------

RECORDS = vp.nfs_volume_paths([dict(ETCD, replicas=2), CONTENT])


def pv_for(record, **changes):
    """The PV the role would have made for ``record``, as the API server returns it once bound."""
    pv = {
        "metadata": {"name": record["pv"], "labels": {"app.kubernetes.io/managed-by": "kubess.stateful"}},
        "spec": {
            "capacity": {"storage": record["size"]},
            "accessModes": record["access_modes"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "kubess-nfs",
            "volumeMode": "Filesystem",
            "nfs": {"server": "10.0.0.5", "path": record["path"]},
            "claimRef": {"kind": "PersistentVolumeClaim", "namespace": record["namespace"], "name": record["pvc"],
                         "uid": "uid-" + record["pvc"], "resourceVersion": "12"},
        },
        "status": {"phase": "Bound"},
    }
    for path, value in changes.items():
        node = pv
        keys = path.split("__")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    return pv


def pvc_for(record, **spec):
    base = {"storageClassName": "kubess-nfs", "volumeName": record["pv"], "accessModes": record["access_modes"],
            "resources": {"requests": {"storage": record["size"]}}}
    base.update(spec)
    return {"metadata": {"name": record["pvc"], "namespace": record["namespace"], "uid": "uid-" + record["pvc"]},
            "spec": base}


def check(pvs=(), pvcs=(), server="10.0.0.5", static=True, records=None):
    return vp.nfs_volume_check(RECORDS if records is None else records, list(pvs), list(pvcs), server, static)


def test_fresh_cluster_everything_missing():
    out = check()
    assert out == {"conflicts": [], "released": [], "existing_pvs": [],
                   "missing_pvs": ["kubess-data-etcd-0", "kubess-data-etcd-1", "kubess-wordpress-content"]}


def test_matching_bound_objects_are_no_conflict():
    out = check([pv_for(r) for r in RECORDS], [pvc_for(r) for r in RECORDS])
    assert out["conflicts"] == [] and out["released"] == [] and out["missing_pvs"] == []
    assert len(out["existing_pvs"]) == 3


def test_mutable_differences_are_no_conflict():
    # capacity, mount options, reclaim policy and labels are changed in place by applying the manifest
    pv = pv_for(RECORDS[0], spec__capacity={"storage": "2Gi"}, spec__mountOptions=["nfsvers=3"],
                spec__persistentVolumeReclaimPolicy="Delete")
    assert check([pv])["conflicts"] == []


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"spec__nfs": {"server": "10.9.9.9", "path": "/srv/nfs/kubess/kubess/data-etcd-0"}}, "points at NFS server '10.9.9.9'"),
        ({"spec__nfs": {"server": "10.0.0.5", "path": "/elsewhere"}}, "has NFS path '/elsewhere'"),
        ({"spec__nfs": None, "spec__hostPath": {"path": "/x"}}, "volume source other than NFS"),
        ({"spec__storageClassName": "fast"}, "has storageClassName 'fast', the volume layout says 'kubess-nfs'"),
        ({"spec__volumeMode": "Block"}, "volumeMode 'Block'"),
        ({"spec__claimRef": {"namespace": "other", "name": "data-etcd-0"}}, "reserved for claim other/data-etcd-0"),
        ({"metadata__labels": {}}, "not managed by kubess.stateful"),
    ],
)
def test_immutable_differences_are_conflicts_naming_the_pv(changes, fragment):
    out = check([pv_for(RECORDS[0], **changes)])
    assert len(out["conflicts"]) == 1
    assert "kubess-data-etcd-0" in out["conflicts"][0] and fragment in out["conflicts"][0]


def test_path_written_with_a_trailing_slash_is_the_same_path():
    pv = pv_for(RECORDS[0], spec__nfs={"server": "10.0.0.5", "path": RECORDS[0]["path"] + "/"})
    assert check([pv])["conflicts"] == []


def test_released_volume_whose_claim_is_gone():
    pv = pv_for(RECORDS[0], status__phase="Released")
    assert check([pv])["released"] == ["kubess-data-etcd-0"]
    # a new claim of the same name (another uid) is waiting for it: still released, rebind it
    pvc = pvc_for(RECORDS[0], volumeName="")
    pvc["metadata"]["uid"] = "new-uid"
    assert check([pv], [pvc])["released"] == ["kubess-data-etcd-0"]


def test_released_volume_without_uid_is_already_free():
    pv = pv_for(RECORDS[0], status__phase="Released")
    del pv["spec"]["claimRef"]["uid"]
    assert check([pv])["released"] == []


def test_released_volume_with_a_conflict_is_not_rebound():
    pv = pv_for(RECORDS[0], status__phase="Released", spec__storageClassName="fast")
    out = check([pv])
    assert out["released"] == [] and len(out["conflicts"]) == 1


def test_claim_bound_to_another_volume_is_a_conflict():
    out = check([], [pvc_for(RECORDS[1], volumeName="pvc-1234")])
    assert out["conflicts"] == ["PersistentVolumeClaim kubess/data-etcd-1 is bound to PersistentVolume 'pvc-1234', "
                                "not to 'kubess-data-etcd-1' made for it"]


def test_claim_of_another_class_is_a_conflict():
    out = check([], [pvc_for(RECORDS[0], storageClassName="standard", volumeName="")])
    assert len(out["conflicts"]) == 1 and "storageClassName 'standard'" in out["conflicts"][0]


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ({"accessModes": ["ReadWriteOnce"]}, "access modes"),
        ({"resources": {"requests": {"storage": "1Gi"}}}, "requests 1Gi, wanted 5Gi"),
    ],
)
def test_shared_claim_differences_are_conflicts(spec, fragment):
    out = check([], [pvc_for(RECORDS[2], **spec)])
    assert len(out["conflicts"]) == 1 and fragment in out["conflicts"][0]


def test_shared_claim_size_in_another_notation_is_the_same():
    assert check([], [pvc_for(RECORDS[2], resources={"requests": {"storage": "5120Mi"}})])["conflicts"] == []


def test_storageclass_mode_checks_claims_only():
    records = vp.nfs_volume_paths([dict(ETCD, replicas=1), CONTENT])
    out = check([pv_for(records[0], spec__storageClassName="other")], [pvc_for(records[1], volumeName="pvc-77")],
                static=False, records=records)
    assert out == {"conflicts": [], "released": [], "existing_pvs": [], "missing_pvs": []}
    out = check([], [pvc_for(records[1], storageClassName="other", volumeName="pvc-77")], static=False,
                records=records)
    assert len(out["conflicts"]) == 1


def test_same_volume_wanted_twice_is_a_conflict():
    clash = {"claim": "data-etcd-0", "namespace": "kubess", "size": "1Gi"}
    records = vp.nfs_volume_paths([dict(ETCD, replicas=1), clash], storage_class="kubess-nfs")
    out = check(records=records)
    assert any("PersistentVolume kubess-data-etcd-0 is wanted twice" in c for c in out["conflicts"])
    assert any("PersistentVolumeClaim kubess/data-etcd-0 is wanted twice" in c for c in out["conflicts"])


def test_inputs_are_not_modified():
    pvs = [pv_for(r) for r in RECORDS]
    before = copy.deepcopy(pvs)
    check(pvs)
    assert pvs == before


# --- volume_layout_problems, directories_to_fix ----------------------------------------------------------


def test_layout_problems_name_the_entry_and_the_field():
    problems = vp.volume_layout_problems([
        ETCD,
        dict(ETCD, statefulset="Etcd_1"),
        dict(CONTENT, namespace="Bad_NS"),
        dict(ETCD, replicas=0),
        {"statefulset": "db", "namespace": "ns", "replicas": 1, "size": "1Gi"},
    ])
    assert problems == [
        "entry 1 (StatefulSet Etcd_1): statefulset must be a DNS-1123 label of at most 52 characters (lower-case "
        "letters, digits and '-', starting and ending with a letter or digit)",
        "entry 2 (claim wordpress-content): namespace must be a DNS-1123 label of at most 63 characters (lower-case "
        "letters, digits and '-', starting and ending with a letter or digit)",
        "entry 3 (StatefulSet etcd): replicas must be at least 1, got 0",
        "entry 4 (StatefulSet db): storage_class must be set: a static PersistentVolume meets its claim through it",
    ]
    assert vp.volume_layout_problems([{"statefulset": "db", "namespace": "ns", "replicas": 1, "size": "1Gi"}],
                                     "", static=False) == []
    assert vp.volume_layout_problems("etcd") == ["must be a list of volumes, got str"]


def test_directories_to_fix_are_the_missing_and_the_different_ones():
    wanted = vp.nfs_directories([dict(ETCD, replicas=3)], "/exports")
    existing = [
        {"path": "/exports/kubess/data-etcd-0", "uid": 65532, "gid": 65532, "mode": "0700"},
        {"path": "/exports/kubess/data-etcd-1", "uid": 0, "gid": 65532, "mode": "0700"},
        {"path": "/exports/kubess/data-etcd-2/", "uid": 65532, "gid": 65532, "mode": "0755"},
    ]
    parent = {"path": "/exports/kubess", "uid": 0, "gid": 0, "mode": "0755"}
    assert [d["path"] for d in vp.directories_to_fix(wanted, existing + [parent], "/exports/")] == [
        "kubess/data-etcd-1", "kubess/data-etcd-2"]
    assert vp.directories_to_fix(wanted, existing[:1] + [parent], "/exports") == wanted[1:]
    assert vp.directories_to_fix(wanted, [dict(e, uid=65532, mode="0700") for e in existing] + [parent],
                                 "/exports") == []


def test_parent_directories_come_first_traversable_by_every_uid():
    """A parent shared by volumes of several owners belongs to the export root's owner, mode 0755: were it made with
    the first volume's owner and mode (0700), the other workloads and a root-squashed mount could not look up their
    own directory below it."""
    wanted = vp.nfs_directories([dict(ETCD, replicas=1), CONTENT], "/exports")
    todo = vp.directories_to_fix(wanted, [], "/exports")
    assert todo[0] == {"path": "kubess", "owner": 0, "group": 0, "mode": "0755"}
    assert [d["path"] for d in todo[1:]] == [d["path"] for d in wanted]
    # A parent an earlier run left with a volume's owner and mode is set right.
    shut = [{"path": "/exports/kubess", "uid": 65532, "gid": 65532, "mode": "0700"}]
    assert vp.directories_to_fix(wanted, shut, "/exports", 1, 2, "0711")[0] == {
        "path": "kubess", "owner": 1, "group": 2, "mode": "0711"}


BACKUP = {"claim": "etcd-backup", "namespace": "kubess", "size": "1Gi", "storage_class": "kubess-nfs",
          "directory": "backups/etcd", "owner": 65532, "group": 65532, "mode": "0700"}


def test_a_shared_claim_with_a_directory_is_kept_there_in_every_namespace():
    other = dict(BACKUP, namespace="kubess-restore")
    records = vp.nfs_volume_paths([BACKUP, other], "/srv/nfs/kubess")
    assert [(r["pv"], r["namespace"], r["path"]) for r in records] == [
        ("kubess-etcd-backup", "kubess", "/srv/nfs/kubess/backups/etcd"),
        ("kubess-restore-etcd-backup", "kubess-restore", "/srv/nfs/kubess/backups/etcd"),
    ]
    # One directory on the NFS server for both.
    assert vp.nfs_directories([ETCD, BACKUP, other], "/srv/nfs/kubess") == [
        {"path": "kubess/data-etcd-0", "owner": 65532, "group": 65532, "mode": "0700"},
        {"path": "kubess/data-etcd-1", "owner": 65532, "group": 65532, "mode": "0700"},
        {"path": "kubess/data-etcd-2", "owner": 65532, "group": 65532, "mode": "0700"},
        {"path": "backups/etcd", "owner": 65532, "group": 65532, "mode": "0700"},
    ]


def test_one_directory_with_two_owners_is_refused():
    with pytest.raises(AnsibleFilterError, match="backups/etcd is shared by volumes that want different owners"):
        vp.nfs_directories([BACKUP, dict(BACKUP, namespace="other", owner=33)], "/srv/nfs/kubess")


@pytest.mark.parametrize("bad", ["/abs", "a/../b", "a//b", ".", "a/"])
def test_a_directory_outside_the_root_or_malformed_is_refused(bad):
    with pytest.raises(AnsibleFilterError, match=r"volumes\[0\].directory must be a relative path"):
        vp.nfs_volume_paths([dict(BACKUP, directory=bad)])
    assert "directory must be a relative path" in vp.volume_layout_problems([dict(BACKUP, directory=bad)])[0]


def test_a_statefulset_entry_has_no_directory():
    with pytest.raises(AnsibleFilterError, match="directory is for a shared claim only"):
        vp.nfs_volume_paths([dict(ETCD, directory="x")])
