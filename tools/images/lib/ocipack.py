"""Pack a root file system directory into a single-layer OCI image archive.

The archive is an OCI image layout in a tar file (oci-layout, index.json, blobs/sha256/...), the form
that `ctr images import` reads: its index.json names the image with both the
`io.containerd.image.name` and the `org.opencontainers.image.ref.name` annotations, each holding the
full reference (registry/name:tag), which containerd keeps as the image name.

The output depends only on the directory's contents and the arguments: entries are sorted, times are
clamped to --epoch, owner names are left out (numeric ids only), and gzip carries no name or time.

Usage: ocipack.py --rootfs DIR --config CONFIG.json --ref REF --epoch N --out IMAGE.tar
CONFIG.json holds the image's runtime configuration (User, Entrypoint, Cmd, Env, WorkingDir,
ExposedPorts, Labels, StopSignal), as in the "config" member of an OCI image configuration.
"""

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import stat
import sys
import tarfile

# Only these extended attributes travel into the layer (file capabilities, e.g. a non-root
# process binding a port below 1024); everything else the build host adds is dropped.
KEPT_XATTRS = ("security.capability",)
# Contents of these directories belong to the runtime, never to an image.
RUNTIME_DIRS = ("dev", "proc", "sys")
CONFIG_KEYS = {"User", "Entrypoint", "Cmd", "Env", "WorkingDir", "ExposedPorts", "Labels", "StopSignal", "Volumes"}


class HashingWriter:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, target):
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        return self.target.write(data)

    def flush(self):
        self.target.flush()

    def digest(self):
        return "sha256:" + self.sha.hexdigest()


def walk_dir(root, rel):
    """(path, lstat) of everything under root/rel, sorted by name, each directory before its contents."""
    for name in sorted(os.listdir(os.path.join(root, rel))):
        child = f"{rel}/{name}"
        st = os.lstat(os.path.join(root, child))
        yield child, st
        if stat.S_ISDIR(st.st_mode):
            yield from walk_dir(root, child)


def entries(root):
    for name in sorted(os.listdir(root)):
        st = os.lstat(os.path.join(root, name))
        yield name, st
        if stat.S_ISDIR(st.st_mode) and name not in RUNTIME_DIRS:
            yield from walk_dir(root, name)


def write_layer(root, epoch, out):
    """Write the layer (tar, gzip) of root into the file object out; return (diff_id, digest, size)."""
    compressed = HashingWriter(out)
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, compresslevel=6, mtime=0) as gz:
        plain = HashingWriter(gz)
        with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            seen_inodes = {}
            for rel, st in entries(root):
                full = os.path.join(root, rel)
                info = tarfile.TarInfo(rel)
                info.mode = stat.S_IMODE(st.st_mode)
                info.uid, info.gid = st.st_uid, st.st_gid
                info.uname = info.gname = ""
                info.mtime = min(int(st.st_mtime), epoch)
                pax = {}
                for attr in KEPT_XATTRS:
                    try:
                        value = os.getxattr(full, attr, follow_symlinks=False)
                    except OSError:
                        continue
                    pax["SCHILY.xattr." + attr] = value.decode("utf-8", "surrogateescape")
                info.pax_headers = pax
                data = None
                if stat.S_ISDIR(st.st_mode):
                    info.type = tarfile.DIRTYPE
                elif stat.S_ISLNK(st.st_mode):
                    info.type = tarfile.SYMTYPE
                    info.linkname = os.readlink(full)
                elif stat.S_ISREG(st.st_mode):
                    key = (st.st_dev, st.st_ino)
                    if st.st_nlink > 1 and key in seen_inodes:
                        info.type = tarfile.LNKTYPE
                        info.linkname = seen_inodes[key]
                    else:
                        if st.st_nlink > 1:
                            seen_inodes[key] = rel
                        info.type = tarfile.REGTYPE
                        info.size = st.st_size
                        data = full
                elif stat.S_ISFIFO(st.st_mode):
                    info.type = tarfile.FIFOTYPE
                elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                    info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
                    info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                else:  # sockets have no place in an image
                    continue
                if data is None:
                    tar.addfile(info)
                else:
                    with open(data, "rb") as f:
                        tar.addfile(info, f)
        diff_id = plain.digest()
    return diff_id, compressed.digest(), compressed.size


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def add_bytes(tar, name, data, epoch):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = epoch
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def pack(rootfs, config_path, ref, epoch, out_path, history):
    with open(config_path, encoding="utf-8") as f:
        runtime = json.load(f)
    unknown = set(runtime) - CONFIG_KEYS
    if unknown:
        raise SystemExit(f"{config_path}: unknown image config keys {sorted(unknown)}")

    created = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    tmp_layer = out_path + ".layer"
    with open(tmp_layer, "wb") as f:
        diff_id, layer_digest, layer_size = write_layer(rootfs, epoch, f)

    config = {
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": history}],
    }
    config_blob = canonical(config)
    config_digest = "sha256:" + hashlib.sha256(config_blob).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_blob),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer_digest,
                "size": layer_size,
            }
        ],
    }
    manifest_blob = canonical(manifest)
    manifest_digest = "sha256:" + hashlib.sha256(manifest_blob).hexdigest()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": manifest["mediaType"],
                "digest": manifest_digest,
                "size": len(manifest_blob),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": ref,
                    "org.opencontainers.image.ref.name": ref,
                },
            }
        ],
    }

    tmp_out = out_path + ".tmp"
    with tarfile.open(tmp_out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add_bytes(tar, "oci-layout", canonical({"imageLayoutVersion": "1.0.0"}), epoch)
        add_bytes(tar, "index.json", canonical(index), epoch)
        blobs = sorted(
            [
                (config_digest, config_blob, None),
                (manifest_digest, manifest_blob, None),
                (layer_digest, None, tmp_layer),
            ]
        )
        for digest, data, path in blobs:
            name = "blobs/sha256/" + digest.split(":", 1)[1]
            if data is not None:
                add_bytes(tar, name, data, epoch)
            else:
                info = tarfile.TarInfo(name)
                info.size = os.path.getsize(path)
                info.mode = 0o644
                info.mtime = epoch
                info.uname = info.gname = ""
                with open(path, "rb") as f:
                    tar.addfile(info, f)
    os.unlink(tmp_layer)
    os.replace(tmp_out, out_path)
    return manifest_digest, layer_size


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rootfs", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--ref", required=True)
    parser.add_argument("--epoch", required=True, type=int)
    parser.add_argument("--out", required=True)
    parser.add_argument("--history", default="kubess.stateful tools/images/build.sh")
    args = parser.parse_args(argv)
    digest, size = pack(args.rootfs, args.config, args.ref, args.epoch, args.out, args.history)
    print(f"{args.ref} {digest} layer {size} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
