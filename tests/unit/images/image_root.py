"""Run an image's programs in its unpacked root file system, the way a container would, without a runtime.

The root is an archive unpacked by ``ImageArchive.unpack``. Each program runs with chroot(8) in a
private mount namespace of its own (unshare(1)), with the host's /dev bound into the root and
exactly the environment given (plus the image's PATH). Directories of the host bound onto paths
of the root (``binds``) stand for volumes; read-only bind mounts for volumes the container may not
write.

``run`` runs a program to its end. ``Container`` starts a long-running one in mount, network, UTS
and PID namespaces of its own (it is PID 1 there, with /proc mounted for it, as in a pod), reads its
output as it comes (``wait_for_line`` waits for a line, with a deadline), runs other programs
beside it in its network namespace with its volumes (``run``), and stops it with SIGTERM.
Needs root (unshare, chroot, mount, nsenter).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _inside(root: Path, path: str) -> str:
    return shlex.quote(str(root / path.lstrip("/")))


def mount_lines(root: Path, *, binds: Mapping[str, Path] | None = None, read_only: tuple[str, ...] = (),
                proc: bool = False) -> list[str]:
    """Shell commands giving the root /dev (and /proc), the bind mounts and the read-only paths."""
    lines = [f"mount --rbind /dev {_inside(root, '/dev')}"]
    if proc:
        lines.append(f"mount -t proc proc {_inside(root, '/proc')}")
    for inside, source in (binds or {}).items():
        lines.append(f"mount --bind {shlex.quote(str(source))} {_inside(root, inside)}")
    for path in read_only:
        lines.append(f"mount --bind {_inside(root, path)} {_inside(root, path)}"
                     f" && mount -o remount,bind,ro {_inside(root, path)}")
    return lines


def chroot_command(root: Path, argv: list[str], *, cwd: str = "/", user: str | None = None,
                   env: Mapping[str, str] | None = None) -> list[str]:
    """argv in the root as user ("uid:gid"; default root) with exactly env (plus PATH), from cwd."""
    chroot = ["chroot"] + ([f"--userspec={user}"] if user else []) + [str(root)]
    variables = [f"{k}={v}" for k, v in {"PATH": PATH, **(env or {})}.items()]
    return chroot + ["/usr/bin/env", "-i", *variables, "/usr/bin/env", "-C", cwd, *argv]


def run(root: Path, argv: list[str], *, cwd: str = "/", user: str | None = None, env: Mapping[str, str] | None = None,
        read_only: tuple[str, ...] = (), binds: Mapping[str, Path] | None = None, input: str | None = None,
        timeout: float = 300, isolated: bool = False, enter: list[str] | None = None,
        proc: bool = False) -> subprocess.CompletedProcess:
    """Run argv in the image's root to its end (see chroot_command). isolated: in network and PID
    namespaces of its own too (/proc mounted), so that nothing it starts reaches the host's network
    or outlives it. enter: a command prefix (nsenter) that puts it into another process's
    namespaces first; proc: mount /proc (for the PID namespace entered)."""
    script = " && ".join(mount_lines(root, binds=binds, read_only=read_only, proc=isolated or proc)
                         + ["exec " + shlex.join(chroot_command(root, argv, cwd=cwd, user=user, env=env))])
    unshare = ["unshare", "--mount", "--propagation", "private", "--fork"]
    if isolated:
        unshare += ["--net", "--pid", "--kill-child"]
    command = [*(enter or []), *unshare, "sh", "-c", script]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, input=input)


class Container:
    """argv running in the root like a container's process: PID 1 of PID, mount, network and UTS
    namespaces of its own (or sharing the network namespace of ``network_of``), loopback up,
    hostname set, /proc mounted, volumes bound. Standard output and error are read into ``lines``."""

    def __init__(self, root: Path, argv: list[str], *, user: str | None = None, env: Mapping[str, str] | None = None,
                 binds: Mapping[str, Path] | None = None, hostname: str = "container",
                 network_of: Container | None = None):
        self.root = root
        self.binds = dict(binds or {})
        self.lines: list[str] = []
        self._eof = False
        self._changed = threading.Condition()
        setup = [f"hostname {shlex.quote(hostname)}"]
        if network_of is None:
            setup.append("ip link set lo up")
        script = " && ".join(setup + mount_lines(root, binds=self.binds, proc=True)
                             + ["exec " + shlex.join(chroot_command(root, argv, user=user, env=env))])
        unshare = ["unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child", "--propagation", "private"]
        if network_of is None:
            command = [*unshare[:1], "--net", *unshare[1:]]
        else:
            command = ["nsenter", f"--net=/proc/{network_of.process.pid}/ns/net", *unshare]
        self.process = subprocess.Popen([*command, "sh", "-c", script], stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for raw in iter(self.process.stdout.readline, b""):
            with self._changed:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float = 120) -> re.Match:
        """The first line of the output that matches pattern, once there is one; fails when the
        program ends without one or the deadline passes."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(self.lines)
                if self._eof:
                    raise AssertionError(f"ended (status {self.process.wait()}) before a line matching"
                                         f" {pattern!r}:\n" + "\n".join(self.lines[-80:]))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n"
                                         + "\n".join(self.lines[-80:]))
                self._changed.wait(remaining)

    def pid(self) -> int:
        """The host's id of the container's PID 1 (unshare's only child)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        assert len(children) == 1, children
        return int(children[0])

    def environ(self) -> dict[str, str]:
        """PID 1's environment, as it is now."""
        raw = Path(f"/proc/{self.pid()}/environ").read_bytes()
        return dict(entry.split("=", 1) for entry in raw.decode().split("\0") if entry)

    def status(self) -> dict[str, str]:
        """PID 1's /proc status fields (Name, Uid, Gid, ...)."""
        lines = Path(f"/proc/{self.pid()}/status").read_text().splitlines()
        return {key: value.strip() for key, value in (line.split(":", 1) for line in lines)}

    def run(self, argv: list[str], *, user: str | None = None, env: Mapping[str, str] | None = None,
            input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """argv beside the container: in its network, UTS and PID namespaces (its /proc), with its volumes."""
        namespaces = f"/proc/{self.pid()}/ns"
        enter = ["nsenter", f"--net={namespaces}/net", f"--uts={namespaces}/uts", f"--pid={namespaces}/pid"]
        return run(self.root, argv, user=user, env=env, binds=self.binds, input=input, timeout=timeout, enter=enter,
                   proc=True)

    def wait(self, timeout: float = 120) -> int:
        """The exit status, once the program has ended and its output is read."""
        status = self.process.wait(timeout=timeout)
        self._reader.join(timeout)
        return status

    def stop(self, timeout: float = 120) -> int:
        """SIGTERM to PID 1, as a runtime stops a container; its exit status."""
        if self.process.poll() is None:
            os.kill(self.pid(), signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """Ends everything at once (clean-up after a failure): unshare, and through it PID 1."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._reader.join(10)
