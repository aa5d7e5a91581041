"""Read an OCI image archive written by tools/images/build.sh without a container runtime.

``ImageArchive(path)`` parses oci-layout, index.json, the manifest and the config, and indexes the
single layer's entries; ``resolve`` follows symbolic links the way the kernel would inside the
container's root (absolute targets are relative to the image root), ``read`` returns a file's bytes
and ``unpack`` writes the root file system to a directory, owners and modes included (as root).
"""

from __future__ import annotations

import json
import os
import posixpath
import stat
import tarfile
from pathlib import Path


HEAD_SIZE = 256


class ImageArchiveError(Exception):
    pass


def _norm(name: str) -> str:
    """A layer entry's name as an absolute path inside the image."""
    if name.startswith("./"):
        name = name[2:]
    return "/" + name.strip("/") if name.strip("/") else "/"


class ImageArchive:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with tarfile.open(self.path) as outer:
            names = set(outer.getnames())
            for required in ("oci-layout", "index.json"):
                if required not in names:
                    raise ImageArchiveError(f"{self.path}: no {required}, not an OCI image layout")
            self.layout = json.load(outer.extractfile("oci-layout"))
            self.index = json.load(outer.extractfile("index.json"))
            manifests = self.index.get("manifests") or []
            if len(manifests) != 1:
                raise ImageArchiveError(f"{self.path}: index.json lists {len(manifests)} manifests, expected 1")
            self.descriptor = manifests[0]
            self.manifest = json.load(outer.extractfile(self._blob_name(self.descriptor["digest"])))
            self.image_config = json.load(outer.extractfile(self._blob_name(self.manifest["config"]["digest"])))
            layers = self.manifest.get("layers") or []
            if len(layers) != 1:
                raise ImageArchiveError(f"{self.path}: {len(layers)} layers, expected 1")
            self.layer_descriptor = layers[0]
            self.entries: dict[str, tarfile.TarInfo] = {}
            # One pass over the layer keeps every entry, the first bytes of every file (to tell
            # scripts and their interpreters) and the whole of the small files under /etc.
            self._heads: dict[str, bytes] = {}
            self._contents: dict[str, bytes] = {}
            layer = outer.extractfile(self._blob_name(self.layer_descriptor["digest"]))
            with tarfile.open(fileobj=layer, mode="r|gz") as inner:
                for info in inner:
                    path = _norm(info.name)
                    self.entries[path] = info
                    if info.isfile():
                        data = inner.extractfile(info).read(HEAD_SIZE if not path.startswith("/etc/") else -1)
                        self._heads[path] = data[:HEAD_SIZE]
                        if path.startswith("/etc/"):
                            self._contents[path] = data

    @staticmethod
    def _blob_name(digest: str) -> str:
        algorithm, hexdigest = digest.split(":", 1)
        return f"blobs/{algorithm}/{hexdigest}"

    @property
    def config(self) -> dict:
        """The runtime part of the image configuration (User, Entrypoint, Cmd, ...)."""
        return self.image_config.get("config") or {}

    @property
    def ref_names(self) -> dict:
        return self.descriptor.get("annotations") or {}

    def resolve(self, path: str, _depth: int = 0) -> str:
        """Follow symbolic links in every component of path; return the final path."""
        if _depth > 40:
            raise ImageArchiveError(f"too many levels of symbolic links at {path}")
        parts = [p for p in path.split("/") if p not in ("", ".")]
        current = "/"
        for i, part in enumerate(parts):
            if part == "..":
                current = posixpath.dirname(current) or "/"
                continue
            candidate = posixpath.join(current, part)
            info = self.entries.get(candidate)
            if info is not None and info.issym():
                target = info.linkname
                base = "/" if target.startswith("/") else current
                rest = "/".join(parts[i + 1:])
                return self.resolve(posixpath.join(base, target, rest), _depth + 1)
            current = candidate
        return posixpath.normpath(current)

    def lookup(self, path: str, follow: bool = True) -> tarfile.TarInfo | None:
        if follow:
            path = self.resolve(path)
        else:
            parent = self.resolve(posixpath.dirname(path))
            path = posixpath.join(parent, posixpath.basename(path))
        info = self.entries.get(posixpath.normpath(path))
        if info is not None and info.islnk():
            info = self.entries.get(_norm(info.linkname))
        return info

    def exists(self, path: str) -> bool:
        return self.lookup(path) is not None

    def head(self, path: str) -> bytes:
        """The first HEAD_SIZE bytes of a file."""
        info = self.lookup(path)
        if info is None or not info.isfile():
            raise ImageArchiveError(f"{path}: no such file in {self.path}")
        return self._heads[_norm(info.name)]

    def read(self, path: str) -> bytes:
        info = self.lookup(path)
        if info is None or not info.isfile():
            raise ImageArchiveError(f"{path}: no such file in {self.path}")
        if _norm(info.name) in self._contents:
            return self._contents[_norm(info.name)]
        with tarfile.open(self.path) as outer:
            layer = outer.extractfile(self._blob_name(self.layer_descriptor["digest"]))
            with tarfile.open(fileobj=layer, mode="r|gz") as inner:
                for member in inner:
                    if _norm(member.name) == _norm(info.name):
                        return inner.extractfile(member).read()
        raise ImageArchiveError(f"{path}: vanished from {self.path}")

    def listdir(self, path: str) -> list[str]:
        directory = self.resolve(path)
        prefix = directory.rstrip("/") + "/"
        return sorted(
            name[len(prefix):] for name in self.entries if name.startswith(prefix) and "/" not in name[len(prefix):]
        )

    def passwd(self) -> list[list[str]]:
        return [line.split(":") for line in self.read("/etc/passwd").decode().splitlines() if line]

    def group(self) -> list[list[str]]:
        return [line.split(":") for line in self.read("/etc/group").decode().splitlines() if line]

    def unpack(self, target: str | os.PathLike) -> None:
        """Write the root file system into target (which must exist), with owners, modes and links."""
        # The layer holds no entry for / itself: a container's root is root's, 0755.
        os.chown(target, 0, 0)
        os.chmod(target, 0o755)
        with tarfile.open(self.path) as outer:
            layer = outer.extractfile(self._blob_name(self.layer_descriptor["digest"]))
            with tarfile.open(fileobj=layer, mode="r|gz") as inner:
                # Our own archive, unpacked as it is: setuid bits, sticky bits and absolute links included.
                inner.extractall(target, numeric_owner=True, filter="fully_trusted")


def mode_string(info: tarfile.TarInfo) -> str:
    return format(stat.S_IMODE(info.mode), "04o")
