"""A real caskfs mount: every operation through the kernel, with errno checked
for the failing cases, ownership, permissions, and content surviving remount
and kill -9."""
import ctypes
import errno
import hashlib
import os
import pathlib
import stat
import subprocess
import time

import pytest

libc = ctypes.CDLL(None, use_errno=True)
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
AT_FDCWD = -100


def renameat2(a, b, flags):
    if libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), a)


def expect_errno(code, fn, *args):
    with pytest.raises(OSError) as ei:
        fn(*args)
    assert ei.value.errno == code, (os.strerror(ei.value.errno), os.strerror(code))


@pytest.mark.parametrize("extra", [(), ("--writeback",)], ids=["plain", "writeback"])
@pytest.mark.parametrize("size", [0, 1, 4095, (1 << 20) - 1, 1 << 20, (1 << 20) + 1,
                                  (5 << 20) + 17])
def test_write_read_remount(mount, size, extra):
    m = mount(extra=extra)
    blob = os.urandom(size)
    (m.path / "f.bin").write_bytes(blob)
    assert (m.path / "f.bin").read_bytes() == blob
    assert os.stat(m.path / "f.bin").st_size == size
    m.stop()
    m = mount()
    assert (m.path / "f.bin").read_bytes() == blob


def test_errnos(mount):
    m = mount()
    p = m.path
    (p / "file").write_text("x")
    (p / "dir").mkdir()
    (p / "dir" / "inside").write_text("y")
    expect_errno(errno.ENOENT, open, p / "missing")
    expect_errno(errno.ENOENT, os.stat, p / "dir" / "missing")
    expect_errno(errno.EEXIST, os.mkdir, p / "dir")
    expect_errno(errno.EEXIST, os.open, p / "file", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    expect_errno(errno.ENOTEMPTY, os.rmdir, p / "dir")
    expect_errno(errno.EISDIR, open, p / "dir", "w")
    expect_errno(errno.EISDIR, os.unlink, p / "dir")
    expect_errno(errno.ENOTDIR, os.mkdir, p / "file" / "sub")
    expect_errno(errno.ENOTDIR, os.rmdir, p / "file")
    expect_errno(errno.ENAMETOOLONG, open, p / ("n" * 256), "w")
    (p / ("n" * 255)).write_text("longest name")
    assert (p / ("n" * 255)).read_text() == "longest name"
    expect_errno(errno.ENOENT, os.rename, p / "missing", p / "other")


def test_rename_forms(mount):
    p = mount().path
    (p / "a").write_text("A")
    (p / "b").write_text("B")
    os.rename(p / "a", p / "b")  # over an existing file
    assert (p / "b").read_text() == "A" and not (p / "a").exists()
    (p / "c").write_text("C")
    expect_errno(errno.EEXIST, renameat2, p / "c", p / "b", RENAME_NOREPLACE)
    renameat2(p / "c", p / "d", RENAME_NOREPLACE)
    renameat2(p / "b", p / "d", RENAME_EXCHANGE)
    assert (p / "b").read_text() == "C" and (p / "d").read_text() == "A"
    os.makedirs(p / "x" / "y")
    (p / "x" / "y" / "f").write_text("deep")
    os.rename(p / "x", p / "z")
    assert (p / "z" / "y" / "f").read_text() == "deep"
    expect_errno(errno.EINVAL, os.rename, p / "z", p / "z" / "y" / "inside")
    os.mkdir(p / "empty")
    os.rename(p / "z" / "y", p / "empty")  # a directory over an empty one
    assert (p / "empty" / "f").read_text() == "deep"
    expect_errno(errno.ENOTEMPTY, os.rename, p / "z", p / "empty")


def test_links_and_counts(mount):
    p = mount().path
    (p / "f").write_text("data")
    os.link(p / "f", p / "g")
    assert os.stat(p / "f").st_nlink == 2
    assert os.stat(p / "f").st_ino == os.stat(p / "g").st_ino
    os.unlink(p / "f")
    assert os.stat(p / "g").st_nlink == 1
    assert (p / "g").read_text() == "data"
    os.mkdir(p / "d")
    assert os.stat(p / "d").st_nlink == 2
    os.mkdir(p / "d" / "s1")
    os.mkdir(p / "d" / "s2")
    assert os.stat(p / "d").st_nlink == 4
    expect_errno(errno.EPERM, os.link, p / "d", p / "d2")
    os.symlink("d/s1", p / "sym")
    assert os.readlink(p / "sym") == "d/s1"
    assert os.path.isdir(p / "sym")
    assert stat.S_ISLNK(os.lstat(p / "sym").st_mode)


def test_open_unlinked_file_stays_readable(mount):
    p = mount().path
    (p / "f").write_bytes(b"still here")
    with open(p / "f", "rb") as f:
        os.unlink(p / "f")
        assert f.read() == b"still here"
    assert not (p / "f").exists()


def test_buffered_writes_commit_after_close(mount):
    """Files are committed a moment after close (no FLUSH round trip): until
    then stat shows the new size and mtime, an explicit utime is not undone
    by the late commit, and an unmount commits whatever is left."""
    m = mount()
    p = m.path
    (p / "f").write_bytes(b"old content")
    before = os.stat(p / "f")
    time.sleep(0.01)
    with open(p / "f", "r+b") as f:  # an existing file: no OPEN, no RELEASE
        f.seek(0, os.SEEK_END)
        f.write(b" and more")
    st = os.stat(p / "f")
    assert st.st_size == len(b"old content and more")
    assert st.st_mtime_ns > before.st_mtime_ns
    (p / "g").write_bytes(b"x" * 5000)
    os.utime(p / "g", ns=(7, 1_500_000_000_123456789))
    time.sleep(0.5)  # the committer's delay is 0.1 s
    assert os.stat(p / "g").st_mtime_ns == 1_500_000_000_123456789
    blobs = {f"n{i}": os.urandom(1000 + i * 7) for i in range(200)}
    for name, data in blobs.items():
        (p / name).write_bytes(data)
    m.stop()  # at once: the unmount commits what is still buffered
    m = mount()
    p = m.path
    assert (p / "f").read_bytes() == b"old content and more"
    assert os.stat(p / "g").st_mtime_ns == 1_500_000_000_123456789
    for name, data in blobs.items():
        assert (p / name).read_bytes() == data


def test_attributes_and_times(mount):
    p = mount().path
    (p / "f").write_text("x")
    before = os.stat(p / "f")
    time.sleep(0.01)
    os.chmod(p / "f", 0o640)
    after = os.stat(p / "f")
    assert stat.S_IMODE(after.st_mode) == 0o640
    assert after.st_ctime_ns > before.st_ctime_ns
    os.chown(p / "f", 1234, 5678)
    assert (os.stat(p / "f").st_uid, os.stat(p / "f").st_gid) == (1234, 5678)
    os.utime(p / "f", ns=(1_000_000_001, 2_000_000_002))
    st = os.stat(p / "f")
    assert (st.st_atime_ns, st.st_mtime_ns) == (1_000_000_001, 2_000_000_002)
    # O_TRUNC moves mtime and ctime
    fd = os.open(p / "f", os.O_WRONLY | os.O_TRUNC)
    os.close(fd)
    st2 = os.stat(p / "f")
    assert st2.st_size == 0 and st2.st_mtime_ns > st.st_mtime_ns


@pytest.mark.parametrize("extra", [(), ("--writeback",)], ids=["plain", "writeback"])
def test_truncate_sparse_random_writes(mount, extra):
    p = mount(extra=extra).path
    data = bytearray(os.urandom(3 << 20))
    (p / "f").write_bytes(data)
    with open(p / "f", "r+b") as f:
        for off in (10, (1 << 20) - 3, (2 << 20) + 12345):
            f.seek(off)
            f.write(b"PATCH")
            data[off:off + 5] = b"PATCH"
    assert (p / "f").read_bytes() == bytes(data)
    os.truncate(p / "f", 1 << 20 | 7)
    assert (p / "f").read_bytes() == bytes(data[:1 << 20 | 7])
    os.truncate(p / "f", 4 << 20)
    got = (p / "f").read_bytes()
    assert got[:1 << 20 | 7] == bytes(data[:1 << 20 | 7])
    assert got[1 << 20 | 7:] == bytes((4 << 20) - (1 << 20 | 7))
    with open(p / "sparse", "wb") as f:
        f.seek(10 << 20)
        f.write(b"end")
    got = (p / "sparse").read_bytes()
    assert len(got) == (10 << 20) + 3 and got[-3:] == b"end" and not any(got[:10 << 20])


def test_read_then_grow_elsewhere_reads_zeros(mount):
    """A chunk read while the file was short, then the file grows elsewhere:
    the rest of that chunk reads as zeros, not as whatever the daemon's read
    buffer held before."""
    p = mount().path
    (p / "f").write_bytes(os.urandom(3 << 20))
    with open(p / "f", "r+b") as f:
        fd = f.fileno()
        assert len(f.read()) == 3 << 20  # the read buffer now holds random bytes
        f.truncate(4)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        f.seek(0)
        head = f.read()
        f.seek((2 << 20) + 10)
        f.write(b"tail")  # the file grows in chunk 2
        f.flush()
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        f.seek(0)
        data = f.read()
    assert len(head) == 4
    assert data[:4] == head and data[-4:] == b"tail"
    assert not any(data[4:-4])
    assert (p / "f").read_bytes() == data


@pytest.mark.parametrize("extra", [(), ("--writeback",)], ids=["plain", "writeback"])
def test_append_two_writers(mount, extra):
    p = mount(extra=extra).path
    a = os.open(p / "log", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
    b = os.open(p / "log", os.O_WRONLY | os.O_APPEND)
    for i in range(50):
        os.write(a, b"a%02d\n" % i)
        os.write(b, b"b%02d\n" % i)
    os.close(a)
    os.close(b)
    lines = (p / "log").read_bytes().split(b"\n")[:-1]
    assert len(lines) == 100
    assert sorted(lines) == sorted([b"a%02d" % i for i in range(50)] +
                                   [b"b%02d" % i for i in range(50)])


def test_xattrs(mount):
    p = mount().path
    (p / "f").write_text("x")
    os.setxattr(p / "f", "user.color", b"blue")
    os.setxattr(p / "f", "user.empty", b"")
    assert os.getxattr(p / "f", "user.color") == b"blue"
    assert sorted(os.listxattr(p / "f")) == ["user.color", "user.empty"]
    expect_errno(errno.EEXIST, os.setxattr, p / "f", "user.color", b"x", os.XATTR_CREATE)
    expect_errno(errno.ENODATA, os.setxattr, p / "f", "user.none", b"x", os.XATTR_REPLACE)
    os.removexattr(p / "f", "user.color")
    expect_errno(errno.ENODATA, os.getxattr, p / "f", "user.color")
    os.setxattr(p / "f", "user.big", b"v" * 65536)
    assert os.getxattr(p / "f", "user.big") == b"v" * 65536


def test_ownership_and_permissions(mount, public_mnt):
    p = mount(mnt=public_mnt).path
    os.mkdir(p / "pub")
    os.chmod(p / "pub", 0o1777)
    (p / "private").write_text("root's")
    os.chmod(p / "private", 0o600)

    def as_nobody(code):
        return subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True,
                              user=65534, group=65534)

    r = as_nobody(f"open('{p}/pub/mine', 'w').write('hi')")
    assert r.returncode == 0, r.stderr
    st = os.stat(p / "pub" / "mine")
    assert (st.st_uid, st.st_gid) == (65534, 65534)
    r = as_nobody(f"open('{p}/private').read()")
    assert r.returncode != 0 and "Permission denied" in r.stderr
    # setgid directories pass their group on
    os.mkdir(p / "team")
    os.chown(p / "team", 0, 4321)
    os.chmod(p / "team", 0o2777)
    r = as_nobody(f"import os; os.mkdir('{p}/team/sub'); open('{p}/team/f', 'w')")
    assert r.returncode == 0, r.stderr
    assert os.stat(p / "team" / "f").st_gid == 4321
    assert os.stat(p / "team" / "sub").st_mode & stat.S_ISGID


def test_write_truncate_chown_clear_setuid_as_natively(mount, public_mnt, caskfs_bin):
    """The daemon clears setuid/setgid itself (FUSE_HANDLE_KILLPRIV_V2): a write or a
    truncation by a user without CAP_FSETID, and a chown, leave the same mode as on the
    native disk beside the mount; a write by root keeps them. One getxattr of
    security.capability for a file's many writes, not one per write."""
    import json
    p = mount(mnt=public_mnt).path
    native = public_mnt.parent / "native"
    native.mkdir()
    os.chmod(native, 0o777)
    os.chmod(p, 0o777)

    def as_nobody(code):
        r = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True,
                           user=65534, group=65534)
        assert r.returncode == 0, r.stderr

    def modes(d):
        out = {}
        for mode, gid in ((0o6777, 0), (0o2777, 0), (0o4777, 0), (0o6767, 0), (0o2767, 65534)):
            f = d / f"w{mode:o}-{gid}"
            f.write_text("a")
            os.chown(f, 0, gid)
            os.chmod(f, mode)
            as_nobody(f"open('{f}', 'a').write('b')")
            out[f.name] = stat.S_IMODE(os.stat(f).st_mode)
        for name, code in (("trunc", "import os; os.truncate('{f}', 1)"),
                           ("otrunc", "open('{f}', 'w').write('z')")):
            f = d / name
            f.write_text("abc")
            os.chmod(f, 0o6777)
            as_nobody(code.format(f=f))
            out[name] = stat.S_IMODE(os.stat(f).st_mode)
        f = d / "rootwrite"
        f.write_text("a")
        os.chmod(f, 0o6777)
        with open(f, "a") as w:
            w.write("b")
        out["rootwrite"] = stat.S_IMODE(os.stat(f).st_mode)
        for name, mode in (("chown", 0o6755), ("chown-gx", 0o6745)):
            f = d / name
            f.write_text("a")
            os.chmod(f, mode)
            os.chown(f, 65534, -1)
            out[name] = stat.S_IMODE(os.stat(f).st_mode)
        return out

    want, got = modes(native), modes(p)
    assert got == want
    # the semantics checked: cleared by nobody's write, kept by root's, setgid without
    # group execute kept for a member of the group
    assert want["w6777-0"] == 0o777 and want["rootwrite"] == 0o6777
    assert want["w2767-65534"] == 0o2767
    # many writes to one file: one getxattr of security.capability, not one per write
    def stats():
        r = subprocess.run([caskfs_bin, "status", "--json", mount_data(p)],
                           capture_output=True, text=True)
        return json.loads(r.stdout)["stats"]
    before = stats()
    fd = os.open(p / "many", os.O_CREAT | os.O_WRONLY, 0o644)
    for _ in range(40):
        os.write(fd, b"x" * 100)
    os.close(fd)
    after = stats()
    assert after["caskfs_fuse_write"] - before["caskfs_fuse_write"] >= 40, (before, after)
    assert after["caskfs_fuse_getxattr"] - before["caskfs_fuse_getxattr"] <= 2, (before, after)


def mount_data(mnt):
    """The DATA_DIR of the caskfs mount at mnt, from /proc/mounts."""
    with open("/proc/mounts") as f:
        for line in f:
            src, where = line.split()[:2]
            if where == str(mnt) and src.startswith("caskfs:"):
                return src[len("caskfs:"):]
    raise AssertionError(f"{mnt} is not a caskfs mount")


def test_statfs(mount):
    p = mount().path
    sv = os.statvfs(p)
    assert sv.f_bavail > 0 and sv.f_namemax == 255


def test_large_directory(mount):
    p = mount().path
    d = p / "many"
    d.mkdir()
    n = 5000
    for i in range(n):
        (d / f"entry-{i:06d}").write_bytes(b"")
    names = os.listdir(d)
    assert len(names) == n and len(set(names)) == n
    r = subprocess.run(["ls", "-f", str(d)], capture_output=True, text=True)
    assert len(r.stdout.split()) == n + 2
    assert os.path.exists(d / "entry-004321")
    for i in range(n):
        os.unlink(d / f"entry-{i:06d}")
    assert os.listdir(d) == []
    os.rmdir(d)


def tree_snapshot(root, dir_sizes=True):
    """What must survive a remount: per path, mode, links, size, mtime, content
    digest, symlink target, xattrs (values too). Compared with another file
    system, leave dir_sizes out: directory sizes differ by file system."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            q = os.path.join(dirpath, name)
            st = os.lstat(q)
            link = stat.S_ISLNK(st.st_mode)
            digest = (hashlib.sha256(open(q, "rb").read()).hexdigest()
                      if stat.S_ISREG(st.st_mode) else None)
            xattrs = {} if link else {k: os.getxattr(q, k) for k in os.listxattr(q)}
            size = None if stat.S_ISDIR(st.st_mode) and not dir_sizes else st.st_size
            out[os.path.relpath(q, root)] = (st.st_mode, st.st_nlink, size, st.st_mtime_ns,
                                             digest, os.readlink(q) if link else None,
                                             xattrs)
    return out


def test_tree_survives_remount(mount, tmp_path):
    m = mount()
    p = m.path
    os.makedirs(p / "a" / "b")
    (p / "a" / "b" / "f").write_bytes(os.urandom(300000))
    os.chmod(p / "a" / "b" / "f", 0o604)
    os.utime(p / "a" / "b" / "f", ns=(5, 123456789))
    os.link(p / "a" / "b" / "f", p / "a" / "hard")
    os.symlink("b/f", p / "a" / "sym")
    os.setxattr(p / "a", "user.k", b"v")

    before = tree_snapshot(p)
    m.stop()
    m = mount()
    assert tree_snapshot(m.path) == before


def test_kill9_keeps_fsynced_files(mount, tmp_path, caskfs_bin):
    m = mount()
    p = m.path
    written = {}
    for i in range(20):
        blob = os.urandom(100000 + i)
        with open(p / f"f{i}", "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        written[f"f{i}"] = blob
    # unsynced writes in flight when the daemon dies
    with open(p / "unsynced", "wb") as f:
        f.write(os.urandom(50000))
    m.kill9()
    m = mount()
    for name, blob in written.items():
        assert (m.path / name).read_bytes() == blob
    m.stop()
    # no metadata record refers to a chunk that is not in the store
    r = subprocess.run([caskfs_bin, "fsck", str(m.data)], capture_output=True, text=True)
    assert r.returncode == 0 and "clean" in r.stdout, r.stdout + r.stderr


def test_kill9_during_write_workload(mount, caskfs_bin):
    import random
    import threading
    m = mount()
    # a directory that exists only inside the mount: once the dead mount is
    # lazily unmounted, the path falls through to the empty directory below,
    # and opens there must fail rather than succeed on the wrong filesystem
    p = m.path / "work"
    p.mkdir()
    acked = {}
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            blob = os.urandom(random.randint(1, 2 << 20))
            try:
                with open(p / f"w{i}", "wb") as f:
                    f.write(blob)
                    f.flush()
                    os.fsync(f.fileno())
                acked[f"w{i}"] = blob  # only once fsync returned
            except OSError:
                return
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(random.uniform(0.5, 1.5))
    m.kill9()
    stop.set()
    t.join()
    assert len(acked) > 3
    m = mount()
    for name, blob in acked.items():
        assert (m.path / "work" / name).read_bytes() == blob, name
    m.stop()
    r = subprocess.run([caskfs_bin, "fsck", str(m.data)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mount_errors(caskfs_bin, mount, tmp_path):
    m = mount()
    # the DATA_DIR is owned by the running daemon
    other = tmp_path / "mnt2"
    other.mkdir()
    r = subprocess.run([caskfs_bin, "mount", str(tmp_path / "data"), str(other)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 3 and "in use by process" in r.stderr
    # the mountpoint is busy
    r = subprocess.run([caskfs_bin, "mount", str(tmp_path / "data2"), str(m.path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 3 and "busy" in r.stderr
    r = subprocess.run([caskfs_bin, "mount", str(tmp_path / "data2"), str(tmp_path / "nodir")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    r = subprocess.run([caskfs_bin, "mount", "onlyone"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr


def test_background_mount_and_sigterm(caskfs_bin, tmp_path):
    data, mnt = tmp_path / "data", tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([caskfs_bin, "mount", str(data), str(mnt)], capture_output=True,
                       text=True, timeout=30)
    try:
        assert r.returncode == 0, r.stderr
        assert os.path.ismount(mnt)
        (mnt / "f").write_text("background")
        pid = int((data / "LOCK").read_text())
        os.kill(pid, 15)
        for _ in range(500):
            if not os.path.ismount(mnt):
                break
            time.sleep(0.02)
        assert not os.path.ismount(mnt)
        for _ in range(500):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the daemon did not exit after SIGTERM")
    finally:
        if os.path.ismount(mnt):
            subprocess.run(["fusermount3", "-u", str(mnt)])
    r = subprocess.run([caskfs_bin, "kv", str(data), "ls"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("c/")


@pytest.mark.parametrize("extra", [(), ("--writeback",)], ids=["plain", "writeback"])
def test_rsync_in_twice_and_out(mount, tmp_path, extra):
    src = tmp_path / "src"
    for d in ("photos/2024", "audio", "text"):
        (src / d).mkdir(parents=True)
    for i in range(30):
        (src / "photos/2024" / f"img{i}.jpg").write_bytes(os.urandom(20000 + i * 7000))
    (src / "audio" / "song.ogg").write_bytes(os.urandom(3 << 20))
    for i in range(2):
        (src / "audio" / f"album{i}.flac").write_bytes(os.urandom(20 << 20))
        os.chmod(src / "audio" / f"album{i}.flac", 0o640 if i else 0o444)
        os.utime(src / "audio" / f"album{i}.flac", ns=(1_500_000_000_000_000_001 + i,) * 2)
    for i in range(20):
        (src / "text" / f"note{i}.txt").write_text("a comment on the harbour\n" * (i * 40 + 1))
    os.symlink("../audio/song.ogg", src / "text" / "link")
    os.link(src / "text" / "note1.txt", src / "text" / "note1-hard.txt")
    os.setxattr(src / "text" / "note2.txt", "user.tag", b"important")
    os.chmod(src / "text" / "note3.txt", 0o600)
    os.utime(src / "audio" / "song.ogg", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    # past mtimes everywhere: rsync leaves a symlink's time alone when the source
    # is less than a second old (on ext4 as well)
    for dirpath, dirs, files in os.walk(src):
        for name in files:
            q = os.path.join(dirpath, name)
            if os.path.islink(q) or "song" not in name and "album" not in name:
                os.utime(q, ns=(1_400_000_000_000_000_007,) * 2, follow_symlinks=False)
    for dirpath, dirs, files in os.walk(src):  # directories too, once their content is there
        os.utime(dirpath, ns=(1_400_000_000_000_000_009,) * 2)
    m = mount(extra=extra)
    p = m.path
    r = subprocess.run(["rsync", "-aHAX", f"{src}/", f"{p}/tree/"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["rsync", "-aHAXc", "--itemize-changes", f"{src}/", f"{p}/tree/"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", r.stdout
    out = tmp_path / "out"
    r = subprocess.run(["cp", "-a", f"{p}/tree", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["diff", "-r", str(src), str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    assert os.getxattr(p / "tree/text/note2.txt", "user.tag") == b"important"
    assert os.stat(p / "tree/text/note1.txt").st_nlink == 2
    # unmount, remount: the tree is identical to the source
    before = tree_snapshot(p / "tree")
    assert tree_snapshot(p / "tree", dir_sizes=False) == tree_snapshot(src, dir_sizes=False)
    m.stop()
    m = mount(extra=extra)
    assert tree_snapshot(m.path / "tree") == before


def test_creates_on_a_fresh_mount_send_no_release(mount, run, tmp_path):
    """CREATE answered ENOSYS turns into MKNOD + an open the kernel learns from, so files
    created on a fresh mount (rsync into it) cost no RELEASE; they are whole and exclusive;
    the request counts show in `caskfs status` and on /metrics."""
    import json
    import urllib.request
    from conftest import free_port, wait_port
    port = free_port()
    m = mount(extra=("--listen", f"127.0.0.1:{port}"))
    old = os.umask(0o027)
    try:
        for i in range(50):
            fd = os.open(m.path / f"f{i}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            os.write(fd, bytes([i]) * 20000)
            os.close(fd)
        expect_errno(errno.EEXIST, os.open, m.path / "f7", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    finally:
        os.umask(old)
    for i in range(50):
        assert (m.path / f"f{i}").read_bytes() == bytes([i]) * 20000
        assert stat.S_IMODE(os.stat(m.path / f"f{i}").st_mode) == 0o640
    r = run("status", "--json", tmp_path / "data")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)["stats"]
    assert st.get("caskfs_fuse_release", 0) == 0, st
    assert st.get("caskfs_fuse_create", 0) <= 1 and st["caskfs_fuse_mknod"] >= 49, st
    assert st["caskfs_fuse_write"] >= 50 and st["caskfs_fuse_lookup"] >= 50, st
    assert "requests" in run("status", tmp_path / "data").stdout.decode()
    wait_port(port)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert "# TYPE caskfs_fuse_requests_total counter" in body
    lines = dict(line.rsplit(" ", 1) for line in body.splitlines() if not line.startswith("#"))
    assert int(lines['caskfs_fuse_requests_total{op="mknod"}']) >= 49
    assert lines['caskfs_fuse_requests_total{op="release"}'] == "0"


def status_stats(run, data):
    import json
    r = run("status", "--json", data)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["stats"]


def test_cold_sequential_read_is_one_read_per_chunk(mount, run, tmp_path):
    """Mounted by root, the mount's readahead is 1 MiB (the kernel's default
    for FUSE is 128 KiB): a cold sequential read of 8 MiB is about 8 READs,
    not 64, and reads the right bytes."""
    m = mount()
    data = os.urandom(8 << 20)
    (m.path / "f").write_bytes(data)
    m.stop()
    m = mount()
    dev = os.stat(m.path).st_dev
    with open(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb") as f:
        assert int(f.read()) == 1024
    before = status_stats(run, tmp_path / "data").get("caskfs_fuse_read", 0)
    got = b""
    with open(m.path / "f", "rb", buffering=0) as f:
        while chunk := f.read(1 << 20):
            got += chunk
    assert got == data
    reads = status_stats(run, tmp_path / "data")["caskfs_fuse_read"] - before
    assert 8 <= reads <= 10, reads


def test_unlinked_files_leave_the_namespace_soon(mount, run, tmp_path):
    """Forgotten orphans are purged in batches: 150 files unlinked leave the
    namespace within seconds, except one still open, which reads until its
    close and then goes too."""
    import time
    m = mount()
    base = status_stats(run, tmp_path / "data")["caskfs_meta_inodes"]
    for i in range(150):
        (m.path / f"f{i}").write_bytes(b"x" * (i + 1))
    kept = open(m.path / "f7", "rb")
    for i in range(150):
        os.unlink(m.path / f"f{i}")

    def inodes_reach(n):
        deadline = time.time() + 10
        while time.time() < deadline:
            if status_stats(run, tmp_path / "data")["caskfs_meta_inodes"] == n:
                return True
            time.sleep(0.05)
        return False

    assert inodes_reach(base + 1)
    assert kept.read() == b"x" * 8
    kept.close()
    assert inodes_reach(base)
    assert os.listdir(m.path) == []


BENCH_ROWS = ("sequential write + fsync", "sequential read, cold", "sequential read, warm",
              "create 16 KiB files", "stat of them, cold", "stat of them, warm",
              "readdir of them, cold", "create empty files", "unlink empty files",
              "create 1 MiB files", "fsync of a 4 KiB write, p50", "fsync of a 4 KiB write, p90",
              "cp -r of a media tree", "rsync -a of a media tree", "dedup: 2nd cp -r of photos",
              "rsync -a of the file tree", "find + du of it, cold", "find + du of it, warm",
              "nginx + wrk, 16 KiB file")


def test_bench_runs(caskfs_bin, mount, tmp_path, monkeypatch):
    """caskfs bench runs every workload in rounds and prints its row (figures are not judged
    here), also for a mount whose DATA_DIR was given relative to another directory."""
    monkeypatch.chdir(tmp_path)
    m = mount(data=pathlib.Path("data"))
    with open("/proc/mounts") as f:
        sources = [line.split()[0] for line in f if line.split()[1] == str(m.path)]
    assert sources == [f"caskfs:{tmp_path}/data"]
    tree = tmp_path / "tree"
    for d in range(3):
        (tree / f"d{d}").mkdir(parents=True)
        for i in range(20):
            (tree / f"d{d}" / f"f{i}.h").write_text(f"#define X{d}_{i} {i}\n" * (i + 1))
    os.symlink("d0/f1.h", tree / "link")
    r = subprocess.run([caskfs_bin, "bench", "--size", "8", "--files", "50", "--rounds", "2",
                        "--tree", str(tree), str(m.path)],
                       capture_output=True, text=True, timeout=600, cwd="/")
    assert r.returncode == 0, r.stderr
    assert "failed" not in r.stdout and "skipped" not in r.stdout, r.stdout
    assert "2 rounds of each workload" in r.stdout, r.stdout
    # every row also ran on the null FUSE filesystem, which is gone afterwards
    assert "null FUSE" in r.stdout and "cannot mount the null" not in r.stderr, r.stderr
    assert "between two threads take" in r.stdout, r.stdout
    rows = [line for line in r.stdout.splitlines() if line.startswith(BENCH_ROWS)]
    assert len(rows) == len(BENCH_ROWS), r.stdout
    for line in rows:
        cols = line[30:].split()
        floor = cols[4:6]
        assert len(floor) == 2 and float(floor[0]) > 0 and float(floor[1]) > 0, line
    # the rsync of the tree counted its requests per file, here and on the null filesystem
    assert "requests per file of the rsync, caskfs:" in r.stdout, r.stdout
    assert "requests per file of the rsync, null FUSE:" in r.stdout, r.stdout
    assert "the 2nd copies added" in r.stdout, r.stdout
    with open("/proc/mounts") as f:
        assert f"{tmp_path}/data.bench" not in f.read()
    assert os.listdir(m.path) == []
    r = subprocess.run([caskfs_bin, "bench", "/tmp"], capture_output=True, text=True)
    assert r.returncode == 2 and "not a caskfs mount" in r.stderr


def test_bench_writes_unique_blocks(caskfs_bin, mount, tmp_path):
    """The sequential workload writes new bytes in every 1 MiB block: 32 MiB leave 32
    chunks in the store (a repeated pool would leave as many as the pool has blocks)."""
    m = mount()
    r = subprocess.run([caskfs_bin, "bench", "--size", "32", "--rounds", "1", "--only", "seq",
                        str(m.path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "sequential write + fsync" in r.stdout and "create 16 KiB" not in r.stdout, r.stdout
    m.stop()
    r = subprocess.run([caskfs_bin, "kv", str(m.data), "ls", "c/"], capture_output=True,
                       text=True)
    assert len(r.stdout.split()) >= 32, r.stdout


def test_bench_interrupted_cleans_up(caskfs_bin, mount, tmp_path):
    """^C during caskfs bench unmounts its null filesystem and removes its directories."""
    m = mount()
    p = subprocess.Popen([caskfs_bin, "bench", "--size", "64", "--files", "20000", str(m.path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        while "workload" not in line:  # the header: the null filesystem is mounted
            line = p.stdout.readline()
            assert line, p.stderr.read()
        time.sleep(1)
        p.send_signal(2)
        assert p.wait(timeout=60) == 130
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    with open("/proc/mounts") as f:
        assert f"{tmp_path}/data.bench" not in f.read()
    assert not (tmp_path / "data.bench").exists()
    assert os.listdir(m.path) == []


def test_copy_file_range_shares_chunks(mount, caskfs_bin, tmp_path):
    m = mount()
    p = m.path
    blob = os.urandom((4 << 20) + 12345)
    (p / "src").write_bytes(blob)
    with open(p / "src", "rb") as fi, open(p / "dst", "wb") as fo:
        done = 0
        while done < len(blob):
            n = os.copy_file_range(fi.fileno(), fo.fileno(), len(blob) - done, done, done)
            assert n > 0
            done += n
    assert (p / "dst").read_bytes() == blob
    m.stop()
    # the copy added no chunk: the store holds src's 5 chunks, once
    r = subprocess.run([caskfs_bin, "kv", str(m.data), "ls", "c/"], capture_output=True,
                       text=True)
    assert len(r.stdout.split()) == 5, r.stdout
    m = mount()
    p = m.path
    assert (p / "dst").read_bytes() == blob
    # unaligned copies are right too
    with open(p / "src", "rb") as fi, open(p / "dst2", "wb") as fo:
        fo.write(b"x" * 10)
        fo.flush()
        n = os.copy_file_range(fi.fileno(), fo.fileno(), 3 << 20, 7, 10)
    assert n > 0
    assert (p / "dst2").read_bytes() == b"x" * 10 + blob[7:7 + n]


def test_seek_data_hole(mount):
    p = mount().path
    with open(p / "sparse", "wb") as f:
        f.write(b"a" * 100)
        f.seek(5 << 20)
        f.write(b"b" * 100)
    fd = os.open(p / "sparse", os.O_RDONLY)
    try:
        assert os.lseek(fd, 0, os.SEEK_DATA) == 0
        assert os.lseek(fd, 0, os.SEEK_HOLE) == 1 << 20
        assert os.lseek(fd, 2 << 20, os.SEEK_DATA) == 5 << 20
        assert os.lseek(fd, 5 << 20, os.SEEK_HOLE) == (5 << 20) + 100
        expect_errno(errno.ENXIO, os.lseek, fd, (5 << 20) + 100, os.SEEK_DATA)
    finally:
        os.close(fd)


def test_whole_chunk_writes_mixed_with_partial_ones(mount):
    """1 MiB writes at 1 MiB offsets are stored straight from the request; mixed with
    partial writes of the same slots, and read back before and after a remount, the
    bytes are what was written."""
    m = mount()
    mib = 1 << 20
    want = bytearray(os.urandom(5 * mib + 777))
    fd = os.open(m.path / "f", os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        for i in range(5):
            os.pwrite(fd, want[i * mib:(i + 1) * mib], i * mib)
        os.pwrite(fd, want[5 * mib:], 5 * mib)
        patch = os.urandom(1000)
        want[2 * mib + 10:2 * mib + 1010] = patch  # a partial write into a stored slot
        os.pwrite(fd, patch, 2 * mib + 10)
        whole = os.urandom(mib)
        want[3 * mib:4 * mib] = whole  # a whole slot written again
        os.pwrite(fd, whole, 3 * mib)
        part = os.urandom(300)
        want[3 * mib + 5:3 * mib + 305] = part  # then partly
        os.pwrite(fd, part, 3 * mib + 5)
    finally:
        os.close(fd)
    assert (m.path / "f").read_bytes() == bytes(want)
    m.stop()
    m = mount()
    assert (m.path / "f").read_bytes() == bytes(want)


def test_directories_are_listed_without_opendir_round_trips(mount, caskfs_bin):
    """The first OPENDIR is answered ENOSYS: the kernel then sends no OPENDIR or
    RELEASEDIR at each open of a directory, keeps listings cached, and still sees
    this mount's changes."""
    import json
    m = mount()
    for d in range(5):
        (m.path / f"d{d}").mkdir()
        for i in range(10):
            (m.path / f"d{d}" / f"f{i}").write_text("x")
    for _ in range(4):
        for d in range(5):
            assert len(os.listdir(m.path / f"d{d}")) == 10
    (m.path / "d0" / "new").write_text("y")
    os.unlink(m.path / "d1" / "f0")
    assert sorted(os.listdir(m.path / "d0")) == sorted([f"f{i}" for i in range(10)] + ["new"])
    assert "f0" not in os.listdir(m.path / "d1")
    r = subprocess.run([caskfs_bin, "status", "--json", str(m.data)], capture_output=True,
                       text=True)
    st = json.loads(r.stdout)["stats"]
    assert st.get("caskfs_fuse_opendir", 0) <= 1, st
    assert st.get("caskfs_fuse_releasedir", 0) == 0, st
