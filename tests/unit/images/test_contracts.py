"""Each image that tools/images/build.sh builds, read from its archive and checked against its contract.

The archives are read as files (oci-layout, index.json, manifest, config, layer), never through a
container runtime. A missing archive is built first, through build.sh, so the first run of this
module takes as long as a cold build of the images (minutes). Building needs root and the builder's
Debian packages (``tools/images/build.sh --apt-packages``).

tools/images/<name>/contract.yaml holds, per image:
  user        name, uid, group, gid, home of the configured user (name null: no /etc/passwd)
  config      the runtime configuration the image must carry, exactly (null: absent)
  reads_env   file in the image -> names of environment variables it must mention
  paths       path -> type, owner, group, mode (and file capabilities)
  binaries    programs that must exist and be executable (bare names: looked up along the image's
              PATH); a script's interpreter must exist too
  absent      paths that must not exist; empty: directories that must exist and be empty
  file_lines  per file: last_line (last line neither empty nor a comment), no_active (settings
              that no uncommented line may set)
  only_paths  when given, the layer holds these paths and nothing else
  no_symlinks_under  directories whose contents must hold no symbolic link
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from image_archive import ImageArchive, mode_string
from image_build import BUILD, IMAGES, NAMES, REPO, contract, print_images

# File capabilities by name, as bit numbers (linux/capability.h).
CAPABILITY_BITS = {"cap_net_bind_service": 10}


_archives: dict[str, ImageArchive] = {}


@pytest.fixture
def archive(built, request) -> ImageArchive:
    name = request.param
    if name not in _archives:
        _archives[name] = ImageArchive(built[name][1])
        _archives[name].image_name = name
    return _archives[name]


def by_image(test):
    return pytest.mark.parametrize("archive", NAMES, indirect=True, ids=NAMES)(test)


def contract_of(archive: ImageArchive) -> dict:
    return contract(archive.image_name)


def image_path(archive: ImageArchive) -> list[str]:
    for entry in archive.config.get("Env") or []:
        if entry.startswith("PATH="):
            return entry[5:].split(":")
    return []


def find_program(archive: ImageArchive, program: str) -> str | None:
    if program.startswith("/"):
        return program if archive.exists(program) else None
    for directory in image_path(archive):
        candidate = posixpath.join(directory, program)
        if archive.exists(candidate):
            return candidate
    return None


# --- the archive and its name ---------------------------------------------------------------------


@by_image
def test_archive_is_an_oci_layout_named_as_print_reports(archive, built):
    name = archive.image_name
    ref, path = built[name]
    assert archive.path == path
    assert archive.layout == {"imageLayoutVersion": "1.0.0"}
    assert archive.ref_names == {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref}
    registry_and_name, tag = ref.rsplit(":", 1)
    assert registry_and_name == f"kubess.local/{name}"
    assert tag and tag != "latest"
    assert archive.descriptor["platform"] == {"architecture": "amd64", "os": "linux"}
    assert archive.image_config["rootfs"]["diff_ids"] and archive.image_config["os"] == "linux"
    # The cache directory is named after the image, its tag and the hash of its inputs.
    assert path.parent.name.startswith(f"{name}-{tag}-") and path.name == "image.tar"


@by_image
def test_blobs_match_their_digests(archive):
    import tarfile

    with tarfile.open(archive.path) as tar:
        blobs = [m for m in tar.getmembers() if m.name.startswith("blobs/")]
        assert len(blobs) == 3
        for member in blobs:
            digest = hashlib.sha256(tar.extractfile(member).read()).hexdigest()
            assert member.name == f"blobs/sha256/{digest}"


# --- configuration and users ----------------------------------------------------------------------


@by_image
def test_config_matches_contract(archive):
    want = contract_of(archive)["config"]
    config = archive.config
    for key in ("User", "Entrypoint", "Cmd", "WorkingDir", "StopSignal"):
        assert config.get(key) == want[key], key
    assert sorted(config.get("ExposedPorts") or {}) == sorted(want["ExposedPorts"])
    env = dict(entry.split("=", 1) for entry in config.get("Env") or [])
    assert env == (want["Env"] or {})
    assert sorted(config.get("Volumes") or {}) == sorted(want.get("Volumes") or [])


@by_image
def test_user_and_group_exist(archive):
    user = contract_of(archive)["user"]
    config_user = archive.config.get("User")
    if config_user:
        # Numeric, so that the kubelet can verify runAsNonRoot without reading /etc/passwd.
        assert config_user == f"{user['uid']}:{user['gid']}"
    else:
        assert user["uid"] == 0
    if user["name"] is None:
        assert not archive.exists("/etc/passwd")
        return
    passwd = {entry[0]: entry for entry in archive.passwd()}
    group = {entry[0]: entry for entry in archive.group()}
    entry = passwd.get(user["name"])
    assert entry is not None, f"{user['name']} not in /etc/passwd"
    assert (int(entry[2]), int(entry[3])) == (user["uid"], user["gid"])
    assert entry[5] == user["home"]
    assert [e[0] for e in archive.passwd() if int(e[2]) == user["uid"]] == [user["name"]], "uid used twice"
    assert group[user["group"]][2] == str(user["gid"])
    run_user = contract_of(archive).get("run_user")
    if run_user:
        assert passwd[run_user["name"]][2:4] == [str(run_user["uid"]), str(run_user["gid"])]
        assert group[run_user["group"]][2] == str(run_user["gid"])


# --- files ----------------------------------------------------------------------------------------


def capabilities(info) -> set[str]:
    raw = info.pax_headers.get("SCHILY.xattr.security.capability")
    if raw is None:
        return set()
    data = raw.encode("utf-8", "surrogateescape")
    permitted = int.from_bytes(data[4:8], "little") | (int.from_bytes(data[12:16], "little") << 32)
    return {name for name, bit in CAPABILITY_BITS.items() if permitted & (1 << bit)}


@by_image
def test_paths_have_the_stated_type_owner_and_mode(archive):
    for path, want in contract_of(archive)["paths"].items():
        info = archive.lookup(path)
        assert info is not None, f"{path} is missing"
        kind = "dir" if info.isdir() else "file" if info.isfile() else info.type
        got = {"type": kind, "owner": info.uid, "group": info.gid, "mode": mode_string(info)}
        expected = {k: want[k] for k in ("type", "owner", "group", "mode")}
        assert got == expected, path
        if "capabilities" in want:
            assert capabilities(info) == set(want["capabilities"]), path


@by_image
def test_binaries_exist_and_are_executable(archive):
    for program in contract_of(archive)["binaries"]:
        path = find_program(archive, program)
        assert path is not None, f"{program} is not in the image (PATH {image_path(archive)})"
        info = archive.lookup(path)
        assert info.isfile() and info.mode & 0o111, f"{path} is not an executable file"
        head = archive.head(path)
        if head.startswith(b"#!"):
            interpreter = head[2:].split(b"\n", 1)[0].split()
            assert archive.exists(interpreter[0].decode()), f"{path}: no interpreter {interpreter[0]!r}"
            if interpreter[0].endswith(b"/env") and len(interpreter) > 1:
                assert find_program(archive, interpreter[1].decode()), f"{path}: no {interpreter[1]!r}"


@by_image
def test_absent_and_empty_paths(archive):
    want = contract_of(archive)
    for path in want["absent"]:
        assert not archive.exists(path), f"{path} should not be in the image"
    for path in want["empty"]:
        info = archive.lookup(path)
        assert info is not None and info.isdir(), f"{path} is not a directory"
        assert archive.listdir(path) == [], f"{path} is not empty"


@by_image
def test_scripts_mention_the_environment_they_read(archive):
    for path, names in (contract_of(archive)["reads_env"] or {}).items():
        text = archive.read(path).decode()
        missing = [name for name in names if name not in text]
        assert not missing, f"{path} does not mention {missing}"


@by_image
def test_configuration_lines(archive):
    for path, checks in (contract_of(archive).get("file_lines") or {}).items():
        lines = [line.strip() for line in archive.read(path).decode().splitlines()]
        active = [line for line in lines if line and not line.startswith(("#", ";"))]
        if "last_line" in checks:
            assert active[-1] == checks["last_line"], path
        for setting in checks.get("no_active", []):
            assert not [line for line in active if line.split("=")[0].strip() == setting], f"{path} sets {setting}"


@by_image
def test_only_the_listed_paths_and_no_links_out(archive):
    want = contract_of(archive)
    if "only_paths" in want:
        assert sorted(archive.entries) == sorted(want["only_paths"])
    for directory in want.get("no_symlinks_under", []):
        links = [p for p, info in archive.entries.items() if p.startswith(directory + "/") and info.issym()]
        assert links == [], f"symbolic links under {directory}: {links[:5]}"
        assert len([p for p in archive.entries if p.startswith(directory + "/")]) > 100


# --- the builder ----------------------------------------------------------------------------------


def test_warm_run_rebuilds_nothing(built):
    before = {name: os.stat(archive) for name, (_ref, archive) in built.items()}
    started = time.monotonic()
    result = subprocess.run([str(BUILD)], check=True, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    after = {name: os.stat(archive) for name, (_ref, archive) in built.items()}
    for name in built:
        assert (after[name].st_ino, after[name].st_mtime_ns) == (before[name].st_ino, before[name].st_mtime_ns)
        assert f"{built[name][0]}: cached" in result.stderr
    assert elapsed < 2 * len(built), f"a warm run took {elapsed:.1f} s"


def copy_builder(tmp_path: Path) -> Path:
    """A copy of the builder (tools/images and the versions it reads) to change inputs in."""
    root = tmp_path / "repo"
    shutil.copytree(IMAGES, root / "tools" / "images", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "tools" / "localcluster").mkdir(parents=True)
    for name in ("versions.env", "build.sh"):
        shutil.copy2(REPO / "tools" / "localcluster" / name, root / "tools" / "localcluster" / name)
    return root / "tools" / "images" / "build.sh"


def test_cache_key_follows_every_input_but_the_contract(tmp_path):
    build = copy_builder(tmp_path)
    env = dict(os.environ, KUBESS_CACHE_DIR=str(tmp_path / "cache"))
    base = print_images(env=env, build=build)
    real = print_images()
    assert set(base) == set(NAMES)
    for name, (ref, archive) in base.items():
        # Same inputs, same key: only the cache directory differs.
        assert ref == real[name][0]
        assert archive == tmp_path / "cache" / "images" / real[name][1].parent.name / "image.tar"
    images = build.parent

    (images / "toolbox" / "contract.yaml").write_text("# a contract is no input\n")
    assert print_images(env=env, build=build) == base

    with open(images / "toolbox" / "recipe.sh", "a", encoding="utf-8") as f:
        f.write("# changed\n")
    changed = print_images(env=env, build=build)
    assert changed["toolbox"][0] == base["toolbox"][0]
    assert changed["toolbox"][1] != base["toolbox"][1]
    assert {n: v for n, v in changed.items() if n != "toolbox"} == {n: v for n, v in base.items() if n != "toolbox"}

    with open(images / "lib" / "ocipack.py", "a", encoding="utf-8") as f:
        f.write("# changed\n")
    repacked = print_images(env=env, build=build)
    assert all(repacked[n][1] != changed[n][1] for n in NAMES)

    versions = build.parents[1] / "localcluster" / "versions.env"
    versions.write_text(versions.read_text().replace("ETCD_VERSION=v3.6.16", "ETCD_VERSION=v3.6.15"))
    moved = print_images(env=env, build=build)
    assert moved["etcd"][0] == "kubess.local/etcd:v3.6.15"
    assert moved["pause"] == repacked["pause"]


def test_unknown_image_and_no_building_in_print(tmp_path):
    result = subprocess.run([str(BUILD), "no-such-image"], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "unknown image 'no-such-image'" in result.stderr
    env = dict(os.environ, KUBESS_CACHE_DIR=str(tmp_path / "cache"))
    printed = print_images(env=env)
    assert not (tmp_path / "cache").exists()
    assert all(str(archive).startswith(str(tmp_path / "cache" / "images")) for _ref, archive in printed.values())
