"""The real node's userspace NFS client (tools/localcluster/nfs-fuse) against a private nfs-ganesha.

Runs as root: it starts ganesha.nfsd on 127.0.0.1 (free port, temporary export, root_squash,
anonymous 65534), mounts the export through the `mount` stand-in the kubelet uses, and checks
that ownership, root squashing and permissions come out as the server decides them, that the
operations the workloads rely on work, and that mounting fails cleanly.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_SH = REPO / "tools" / "localcluster" / "nfs-fuse" / "build.sh"
DEADLINE = 30.0
# snippets run as unprivileged users: the system interpreter, which they can execute
USER_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable


def wait_for(what: str, cond, deadline: float = DEADLINE):
    """Polls cond() until it returns a true value, or fails after the deadline."""
    end = time.monotonic() + deadline
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"timed out after {deadline}s waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie has exited: it only waits for its parent
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def mounted(target: Path) -> bool:
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        return any(line.split()[1] == str(target) for line in fh)


def client_pids(target: Path) -> list[int]:
    """Processes of kubess-nfs-fuse serving target."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"kubess-nfs-fuse") and str(target).encode() in argv:
            pids.append(int(entry.name))
    return pids


def as_user(uid: int, gid: int, groups: list[int], code: str, *args: str) -> subprocess.CompletedProcess:
    """Runs a Python snippet as uid:gid with exactly these supplementary groups."""
    return subprocess.run(
        [USER_PYTHON, "-c", textwrap.dedent(code), *args],
        user=uid, group=gid, extra_groups=groups,
        capture_output=True, text=True, timeout=60, check=False,
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"rc={result.returncode}\nstdout={result.stdout}\nstderr={result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def nfs_fuse_bin() -> Path:
    subprocess.run([str(BUILD_SH)], check=True)
    out = subprocess.run([str(BUILD_SH), "--print"], check=True, capture_output=True, text=True).stdout
    key, _sep, value = out.strip().partition("=")
    assert key == "NFS_FUSE_BIN"
    path = Path(value)
    assert (path / "kubess-nfs-fuse").is_file() and (path / "mount").is_file()
    return path


class Ganesha:
    def __init__(self, base: Path):
        self.base = base
        self.export = base / "export"
        self.port = free_port()
        self.pid: int | None = None

    def start(self) -> None:
        self.export.mkdir(mode=0o755)
        os.chmod(self.export, 0o755)
        (self.base / "recovery").mkdir()
        conf = self.base / "ganesha.conf"
        conf.write_text(textwrap.dedent(f"""\
            NFS_CORE_PARAM {{
                Bind_addr = 127.0.0.1;
                NFS_Port = {self.port};
                Protocols = 4;
                mount_path_pseudo = true;
                Enable_NLM = false;
                Enable_RQUOTA = false;
            }}
            NFSV4 {{
                Graceless = true;
                Allow_Numeric_Owners = true;
                Only_Numeric_Owners = true;
                RecoveryBackend = fs;
                RecoveryRoot = "{self.base / 'recovery'}";
            }}
            EXPORT {{
                Export_Id = 1;
                Path = "{self.export}";
                Pseudo = "{self.export}";
                Protocols = 4;
                Transports = TCP;
                SecType = sys;
                Squash = root_squash;
                Anonymous_Uid = 65534;
                Anonymous_Gid = 65534;
                Access_Type = None;
                FSAL {{ Name = VFS; }}
                CLIENT {{ Clients = 127.0.0.1; Access_Type = RW; }}
            }}
            """))
        self.launch()

    def launch(self) -> None:
        conf = self.base / "ganesha.conf"
        pidfile = self.base / "ganesha.pid"
        pidfile.unlink(missing_ok=True)
        subprocess.run(
            ["ganesha.nfsd", "-f", str(conf), "-L", str(self.base / "ganesha.log"),
             "-p", str(pidfile), "-N", "NIV_EVENT"],
            check=True, timeout=DEADLINE,
        )
        self.pid = int(wait_for("ganesha pid file", lambda: pidfile.exists() and pidfile.read_text().strip()))
        wait_for(f"ganesha listening on port {self.port}", lambda: listening(self.port))

    def stop(self) -> None:
        if self.pid is None or not pid_alive(self.pid):
            return
        os.kill(self.pid, signal.SIGTERM)
        end = time.monotonic() + DEADLINE
        while pid_alive(self.pid) and time.monotonic() < end:
            time.sleep(0.05)
        if pid_alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
            wait_for(f"ganesha {self.pid} to die", lambda: not pid_alive(self.pid))

    def restart(self) -> None:
        old = self.pid
        self.stop()
        assert old is not None and not pid_alive(old)
        self.launch()
        assert self.pid != old

    def source(self, sub: str = "") -> str:
        return f"127.0.0.1:{self.export}{sub}"

    def mkdir(self, rel: str, uid: int, gid: int, mode: int) -> Path:
        path = self.export / rel
        path.mkdir(parents=True)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        return path


@pytest.fixture(scope="module")
def ganesha(tmp_path_factory):
    base = tmp_path_factory.mktemp("ganesha")
    os.chmod(base, 0o755)  # unprivileged test users reach the export's paths
    server = Ganesha(base)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def user_tmp():
    """A directory that the unprivileged test users can traverse (pytest's own is 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix="kubess-nfs-fuse-test-"))
    os.chmod(path, 0o755)
    yield path
    if not any(mounted(p) for p in path.iterdir()):
        shutil.rmtree(path)


@pytest.fixture
def mounter(nfs_fuse_bin, ganesha, user_tmp):
    """mount(target=None, extra_opts="", source=None, argv=None) through the mount stand-in."""
    tmp_path = user_tmp
    targets: list[Path] = []

    def mount(name: str = "mnt", *, opts: str = "", source: str | None = None,
              argv: list[str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
        target = tmp_path / name
        target.mkdir(exist_ok=True)
        os.chmod(target, 0o755)
        targets.append(target)
        options = f"port={ganesha.port},nfsvers=4.1,hard" + (f",{opts}" if opts else "")
        if argv is None:
            argv = ["-t", "nfs", "-o", options, source or ganesha.source(), str(target)]
        result = subprocess.run([str(nfs_fuse_bin / "mount"), *argv],
                                capture_output=True, text=True, timeout=60, check=False)
        if check:
            ok(result)
            assert mounted(target), f"{target} is not a mount point after mount returned 0"
        return result

    mount.tmp = tmp_path  # type: ignore[attr-defined]
    yield mount
    for target in targets:
        pids = client_pids(target)
        if mounted(target):
            subprocess.run(["/bin/umount", str(target)], check=False)
        end = time.monotonic() + DEADLINE
        while any(pid_alive(p) for p in pids) and time.monotonic() < end:
            time.sleep(0.05)
        for pid in pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_file_written_as_999_is_owned_by_999_on_the_server(ganesha, mounter):
    ganesha.mkdir("own", 999, 999, 0o755)
    mounter()
    mnt = mounter.tmp / "mnt"
    ok(as_user(999, 999, [], """
        import sys
        with open(sys.argv[1], "w") as fh:
            fh.write("written by 999")
        """, str(mnt / "own" / "file")))
    st = os.stat(ganesha.export / "own" / "file")
    assert (st.st_uid, st.st_gid) == (999, 999)
    assert (ganesha.export / "own" / "file").read_text() == "written by 999"
    # and the client reports the server's owner
    assert os.stat(mnt / "own" / "file").st_uid == 999


def test_root_is_squashed_and_the_owner_is_not(ganesha, mounter):
    ganesha.mkdir("rootonly", 0, 0, 0o700)
    ganesha.mkdir("etcd", 999, 999, 0o700)
    mounter()
    mnt = mounter.tmp / "mnt"
    with pytest.raises(PermissionError) as exc:
        os.mkdir(mnt / "rootonly" / "member")
    assert exc.value.errno == errno.EACCES
    assert not (ganesha.export / "rootonly" / "member").exists()

    ok(as_user(999, 999, [], "import os, sys; os.mkdir(sys.argv[1], 0o700)", str(mnt / "etcd" / "member")))
    st = os.stat(ganesha.export / "etcd" / "member")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (999, 999, 0o700)


def test_supplementary_group_grants_access(ganesha, mounter):
    ganesha.mkdir("html", 0, 33, 0o770)
    mounter()
    target = mounter.tmp / "mnt" / "html"
    write = "import sys; open(sys.argv[1], 'w').write('x')"
    ok(as_user(33, 100, [33], write, str(target / "by-member")))
    st = os.stat(ganesha.export / "html" / "by-member")
    assert (st.st_uid, st.st_gid) == (33, 100)

    denied = as_user(34, 100, [], write, str(target / "by-outsider"))
    assert denied.returncode != 0 and "PermissionError" in denied.stderr
    assert not (ganesha.export / "html" / "by-outsider").exists()


def test_pwrite_is_seen_through_a_shared_readonly_mmap(ganesha, mounter):
    ganesha.mkdir("bbolt", 999, 999, 0o700)
    mounter()
    out = ok(as_user(999, 999, [], """
        import fcntl, mmap, os, sys
        path = sys.argv[1]
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.pwrite(fd, b"\\0" * 8192, 0)
        os.fdatasync(fd)
        m = mmap.mmap(fd, 8192, mmap.MAP_SHARED, mmap.PROT_READ)
        assert m[4096:4101] == b"\\0" * 5
        os.pwrite(fd, b"hello", 4096)
        os.fdatasync(fd)
        print(m[4096:4101].decode())
        # flock: taken, and held against a second open file description on this host
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        other = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            print("second lock granted")
        except BlockingIOError:
            print("second lock refused")
        m.close()
        os.close(other)
        os.close(fd)
        """, str(mounter.tmp / "mnt" / "bbolt" / "db")))
    assert out.split() == ["hello", "second", "lock", "refused"]
    assert (ganesha.export / "bbolt" / "db").read_bytes()[4096:4101] == b"hello"


def test_file_operations(ganesha, mounter):
    ganesha.mkdir("ops", 999, 999, 0o755)
    mounter()
    mnt = mounter.tmp / "mnt" / "ops"
    srv = ganesha.export / "ops"
    ok(as_user(999, 999, [], """
        import ctypes, errno, mmap, os, sys
        d = sys.argv[1]
        j = lambda *p: os.path.join(d, *p)
        fd = os.open(j("a"), os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"0123456789")
        os.fsync(fd)
        os.close(fd)
        os.rename(j("a"), j("b"))
        os.mkdir(j("dir1"))
        open(j("dir1", "inner"), "w").write("inner")
        os.rename(j("dir1"), j("dir2"))
        os.symlink("b", j("link"))
        assert os.readlink(j("link")) == "b"
        os.link(j("b"), j("hard"))
        os.chmod(j("b"), 0o640)
        os.truncate(j("b"), 4)
        os.utime(j("b"), ns=(1_500_000_000_123_456_789, 1_600_000_000_987_654_321))
        os.utime(j("dir2"), (1_400_000_000, 1_400_000_000))
        # fallocate: not in NFSv4.0, refused so that callers fall back
        libc = ctypes.CDLL(None, use_errno=True)
        libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
        fd = os.open(j("prealloc"), os.O_RDWR | os.O_CREAT, 0o600)
        assert libc.fallocate(fd, 0, 0, 65536) == -1 and ctypes.get_errno() == errno.EOPNOTSUPP
        os.posix_fallocate(fd, 0, 65536)  # glibc's fallback writes the range
        assert os.fstat(fd).st_size == 65536
        os.close(fd)
        # O_DIRECT with an aligned buffer, as InnoDB does
        buf = mmap.mmap(-1, 4096)
        buf.write(b"D" * 4096)
        fd = os.open(j("direct"), os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o600)
        assert os.pwritev(fd, [buf], 0) == 4096
        os.fsync(fd)
        os.close(fd)
        """, str(mnt)))
    st_b, st_hard = os.stat(srv / "b"), os.stat(srv / "hard")  # before a read moves atime
    assert st_b.st_mtime_ns == 1_600_000_000_987_654_321
    assert st_b.st_atime_ns == 1_500_000_000_123_456_789
    assert (srv / "b").read_bytes() == b"0123"
    assert not (srv / "a").exists()
    assert (srv / "dir2" / "inner").read_text() == "inner" and not (srv / "dir1").exists()
    assert os.readlink(srv / "link") == "b"
    assert st_b.st_ino == st_hard.st_ino and st_b.st_nlink == 2
    assert st_b.st_mode & 0o7777 == 0o640
    assert os.stat(srv / "dir2").st_mtime == 1_400_000_000
    assert (srv / "direct").read_bytes() == b"D" * 4096
    assert os.stat(srv / "prealloc").st_size == 65536

    # root is squashed: it may not give the file away, nor take it
    with pytest.raises(PermissionError):
        os.chown(mnt / "b", 0, 0)
    with pytest.raises(PermissionError):
        os.chmod(mnt / "b", 0o777)
    assert (os.stat(srv / "b").st_uid, os.stat(srv / "b").st_mode & 0o7777) == (999, 0o640)


def test_tar_extraction_keeps_modes_times_and_links(ganesha, mounter):
    tmp_path = mounter.tmp
    ganesha.mkdir("wp", 999, 999, 0o755)
    src = tmp_path / "src"
    (src / "wp-content" / "plugins").mkdir(parents=True)
    (src / "wp-config.php").write_text("<?php // config\n")
    (src / "readonly.txt").write_text("read only\n")
    os.chmod(src / "readonly.txt", 0o444)
    os.symlink("wp-config.php", src / "config-link")
    for p in (src / "wp-config.php", src / "readonly.txt", src / "wp-content"):
        os.utime(p, (1_300_000_000, 1_300_000_000))
    archive = tmp_path / "wp.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(src, arcname="wordpress")
    os.chmod(archive, 0o644)
    mounter()
    dest = mounter.tmp / "mnt" / "wp"
    result = subprocess.run(["tar", "-xpf", str(archive), "-C", str(dest)],
                            user=999, group=999, extra_groups=[], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    out = ganesha.export / "wp" / "wordpress"
    assert (out / "wp-config.php").read_text() == "<?php // config\n"
    assert os.stat(out / "readonly.txt").st_mode & 0o7777 == 0o444
    assert (out / "readonly.txt").read_text() == "read only\n"
    assert os.readlink(out / "config-link") == "wp-config.php"
    assert os.stat(out / "wp-config.php").st_mtime == 1_300_000_000
    assert os.stat(out / "wp-content").st_mtime == 1_300_000_000
    assert os.stat(out / "wp-config.php").st_uid == 999


def test_two_mounts_see_each_others_files_after_open(ganesha, mounter):
    ganesha.mkdir("shared", 33, 33, 0o775)
    mounter("one")
    mounter("two")
    one, two = mounter.tmp / "one" / "shared", mounter.tmp / "two" / "shared"
    code = """
        import sys
        mode, path, data = sys.argv[1:4]
        if mode == "w":
            with open(path, "w") as fh:
                fh.write(data)
        else:
            with open(path) as fh:
                print(fh.read(), end="")
        """
    ok(as_user(33, 33, [33], code, "w", str(one / "upload.txt"), "first version"))
    assert ok(as_user(33, 33, [33], code, "r", str(two / "upload.txt"), "")) == "first version"
    # rewritten, longer, through the other mount: the next open sees all of it at once
    ok(as_user(33, 33, [33], code, "w", str(one / "upload.txt"), "second version, longer than the first"))
    assert ok(as_user(33, 33, [33], code, "r", str(two / "upload.txt"), "")) == "second version, longer than the first"
    # and a file created on the second mount appears in the first one's listing
    ok(as_user(33, 33, [33], code, "w", str(two / "other.txt"), "x"))
    assert "other.txt" in os.listdir(one)


def test_umount_unmounts_and_the_client_exits(mounter):
    mounter()
    target = mounter.tmp / "mnt"
    pids = client_pids(target)
    assert len(pids) == 1, f"expected one client process for {target}, found {pids}"
    subprocess.run(["/bin/umount", str(target)], check=True, timeout=DEADLINE)
    assert not mounted(target)
    wait_for(f"kubess-nfs-fuse {pids[0]} to exit", lambda: not pid_alive(pids[0]))


def test_wrapper_accepts_mount8_argument_orders_and_passes_other_types_on(ganesha, mounter):
    ganesha.mkdir("order", 0, 0, 0o755)
    (ganesha.export / "order" / "marker").write_text("here")
    target = mounter.tmp / "reordered"
    mounter("reordered", argv=["-o", f"port={ganesha.port}", ganesha.source("/order"), str(target), "-t", "nfs4"])
    assert (target / "marker").read_text() == "here"

    tmpfs = mounter.tmp / "tmpfs"
    mounter("tmpfs", argv=["-t", "tmpfs", "-o", "size=1m", "tmpfs", str(tmpfs)])
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        fstypes = {line.split()[1]: line.split()[2] for line in fh}
    assert fstypes[str(tmpfs)] == "tmpfs"
    assert fstypes[str(target)] == "fuse.kubess-nfs"


@pytest.mark.parametrize("case", ["unreachable server", "missing export path"])
def test_failed_mount_is_clean(ganesha, mounter, case):
    if case == "unreachable server":
        port = free_port()  # nothing listens there
        source = f"127.0.0.1:{ganesha.export}"
        argv = ["-t", "nfs", "-o", f"port={port}", source, str(mounter.tmp / "mnt")]
    else:
        source = ganesha.source("/no/such/dir")
        argv = ["-t", "nfs", "-o", f"port={ganesha.port}", source, str(mounter.tmp / "mnt")]
    before = set(client_pids(mounter.tmp / "mnt"))
    result = mounter("mnt", argv=argv, check=False)
    assert result.returncode == 32, result.stderr
    assert source in result.stderr
    assert not mounted(mounter.tmp / "mnt")
    assert set(client_pids(mounter.tmp / "mnt")) == before == set()


def test_mount_keeps_working_across_a_server_restart(ganesha, mounter):
    ganesha.mkdir("restart", 999, 999, 0o755)
    mounter()
    target = mounter.tmp / "mnt" / "restart"
    code = "import sys; open(sys.argv[1], 'w').write(sys.argv[2]); print(open(sys.argv[1]).read())"
    assert ok(as_user(999, 999, [], code, str(target / "before"), "before")).strip() == "before"
    ganesha.restart()
    # the file handles are the server's persistent ones: the client reconnects and goes on
    assert ok(as_user(999, 999, [], code, str(target / "after"), "after")).strip() == "after"
    assert (ganesha.export / "restart" / "after").read_text() == "after"
    assert sorted(os.listdir(target)) == ["after", "before"]
