"""tools/images/lib/ocipack.py: the archive depends on the root file system's contents only."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from image_archive import ImageArchive, mode_string
from image_build import IMAGES

PACK = IMAGES / "lib" / "ocipack.py"
EPOCH = 1767225600
# security.capability holding cap_net_bind_service, permitted and effective (VFS_CAP_REVISION_2).
CAP_NET_BIND_SERVICE = bytes.fromhex("01000002 00040000 00000000 00000000 00000000")


def make_rootfs(root: Path, reverse: bool) -> None:
    """The same tree, its entries created in either order, at the current time."""
    steps = [
        lambda: (root / "etc").mkdir(mode=0o755),
        lambda: (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/sbin/nologin\n"),
        (root / "tmp").mkdir,
        (root / "bin").mkdir,
        lambda: (root / "bin" / "tool").write_bytes(b"\x7fELF tool"),
        lambda: os.link(root / "bin" / "tool", root / "bin" / "tool-again"),
        lambda: os.symlink("tool", root / "bin" / "alias"),
        (root / "dev").mkdir,
        lambda: (root / "dev" / "leftover").write_text("never in an image\n"),
        (root / "data").mkdir,
    ]
    order = list(range(len(steps)))
    # Dependencies first either way: directories before what they hold, the link target first.
    if reverse:
        order = [0, 2, 3, 7, 9, 8, 4, 6, 5, 1]
    for i in order:
        steps[i]()
    (root / "tmp").chmod(0o1777)
    (root / "bin" / "tool").chmod(0o755)
    os.chown(root / "data", 65532, 65532)
    os.setxattr(root / "bin" / "tool", "security.capability", CAP_NET_BIND_SERVICE)
    os.setxattr(root / "etc" / "passwd", "user.noise", b"dropped")


def pack(rootfs: Path, out: Path, tmp: Path, ref: str = "kubess.local/test:1") -> bytes:
    config = tmp / "config.json"
    config.write_text(json.dumps({"User": "65532:65532", "Cmd": ["/bin/tool"]}))
    subprocess.run([sys.executable, str(PACK), "--rootfs", str(rootfs), "--config", str(config), "--ref", ref,
                    "--epoch", str(EPOCH), "--out", str(out)], check=True, capture_output=True)
    return out.read_bytes()


def test_same_tree_same_archive_whatever_the_order_and_time(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    make_rootfs(first, reverse=False)
    # Another creation order and later file times: neither may show in the archive.
    second.mkdir()
    make_rootfs(second, reverse=True)
    for path in second.rglob("*"):
        os.utime(path, (EPOCH + 10**6, EPOCH + 10**6), follow_symlinks=False)
    a = pack(first, tmp_path / "a.tar", tmp_path)
    b = pack(second, tmp_path / "b.tar", tmp_path)
    assert hashlib.sha256(a).hexdigest() == hashlib.sha256(b).hexdigest()
    assert pack(first, tmp_path / "c.tar", tmp_path, ref="kubess.local/test:2") != a


def test_layer_entries(tmp_path):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    make_rootfs(rootfs, reverse=False)
    pack(rootfs, tmp_path / "image.tar", tmp_path)
    image = ImageArchive(tmp_path / "image.tar")
    assert image.config == {"User": "65532:65532", "Cmd": ["/bin/tool"]}
    assert image.image_config["created"] == "2026-01-01T00:00:00Z"
    names = list(image.entries)
    assert names == sorted(names, key=lambda p: p.split("/")), "entries in path order"
    assert "/dev" in names and "/dev/leftover" not in names
    assert all(info.mtime <= EPOCH for info in image.entries.values())
    assert all(info.uname == "" and info.gname == "" for info in image.entries.values())
    tool, again = image.entries["/bin/tool"], image.entries["/bin/tool-again"]
    assert tool.isfile() and again.islnk() and again.linkname == "bin/tool"
    assert image.entries["/bin/alias"].issym() and image.read("/bin/alias") == b"\x7fELF tool"
    assert tool.pax_headers["SCHILY.xattr.security.capability"].encode("utf-8", "surrogateescape") == CAP_NET_BIND_SERVICE
    assert not any(k.startswith("SCHILY.xattr.user.") for k in image.entries["/etc/passwd"].pax_headers)
    assert mode_string(image.entries["/tmp"]) == "1777"
    data = image.entries["/data"]
    assert (data.uid, data.gid) == (65532, 65532)
    with tarfile.open(tmp_path / "image.tar") as tar:
        layer = tar.getmember("blobs/sha256/" + image.layer_descriptor["digest"].split(":")[1])
        assert layer.size == image.layer_descriptor["size"]
        uncompressed = gzip.decompress(tar.extractfile(layer).read())
    digest = hashlib.sha256(uncompressed)
    assert image.image_config["rootfs"]["diff_ids"] == ["sha256:" + digest.hexdigest()]
