"""What a program may ask of a file, and what it must get back (issue 14).

Absurd sizes and offsets answer EFBIG or work, and the daemon stays small and
alive; a 1 TiB sparse file costs bytes; fallocate in each mode behaves as on
ext4 (sizes, zeros, du); POSIX ACLs round-trip through setfacl, rsync -aHAX
and cp -a, and are enforced.
"""
import errno
import os
import subprocess
import time

import pytest

MiB = 1 << 20
TiB = 1 << 40
MAX_FILE = 16 * TiB  # META_FILE_MAX, docs/USAGE.md


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def du_bytes(path):
    return os.stat(path).st_blocks * 512


def tree_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
    return total


def assert_alive(m):
    assert m.proc.poll() is None, "the daemon died"
    probe = m.path / "alive"
    probe.write_bytes(b"still here")
    assert probe.read_bytes() == b"still here"
    probe.unlink()


def test_absurd_truncate_keeps_the_daemon_small(mount):
    m = mount()
    f = m.path / "f"
    f.write_bytes(b"x")
    r = subprocess.run(["truncate", "-s", "999999999999999", str(f)], capture_output=True)
    if r.returncode != 0:
        assert b"too large" in r.stderr, r.stderr
        assert f.stat().st_size == 1
    else:
        assert f.stat().st_size == 999999999999999
    assert rss_mib(m.proc.pid) < 100
    assert_alive(m)
    # the largest file, and one byte more, by truncate, write and fallocate
    os.truncate(f, MAX_FILE)
    assert f.stat().st_size == MAX_FILE
    with pytest.raises(OSError) as e:
        os.truncate(f, MAX_FILE + 1)
    assert e.value.errno in (errno.EFBIG, errno.EINVAL)
    fd = os.open(f, os.O_RDWR)
    try:
        with pytest.raises(OSError) as e:
            os.pwrite(fd, b"y", MAX_FILE)
        assert e.value.errno == errno.EFBIG
        assert os.pwrite(fd, b"z", MAX_FILE - 1) == 1
        assert os.pread(fd, 1, MAX_FILE - 1) == b"z"
        with pytest.raises(OSError) as e:
            os.posix_fallocate(fd, MAX_FILE - 10, 100)
        assert e.value.errno in (errno.EFBIG, errno.ENOSPC)
        # SEEK_DATA over 16 TiB of holes answers at once
        assert os.lseek(fd, MiB, os.SEEK_DATA) == MAX_FILE - MiB
        assert os.lseek(fd, 0, os.SEEK_HOLE) == MiB  # slots are 1 MiB
        assert os.lseek(fd, MAX_FILE - MiB, os.SEEK_HOLE) == MAX_FILE
    finally:
        os.close(fd)
    assert rss_mib(m.proc.pid) < 100
    assert_alive(m)


def test_terabyte_sparse_file_costs_bytes(mount, tmp_path):
    m = mount()
    f = m.path / "sparse"
    head, tail = os.urandom(MiB), os.urandom(4096)
    with open(f, "wb") as fp:
        fp.truncate(TiB)
        fp.seek(0)
        fp.write(head)
        fp.seek(TiB - len(tail))
        fp.write(tail)
        fp.flush()
        os.fsync(fp.fileno())
    assert f.stat().st_size == TiB
    assert du_bytes(f) <= 2 * MiB
    with open(f, "rb") as fp:
        assert fp.read(MiB) == head
        fp.seek(TiB // 2)
        assert fp.read(4096) == bytes(4096)
        fp.seek(TiB - len(tail))
        assert fp.read() == tail
    assert rss_mib(m.proc.pid) < 100
    m.stop()
    # the namespace and the log hold the data, not the size
    assert tree_bytes(tmp_path / "data") < 64 * MiB
    m = mount()
    with open(m.path / "sparse", "rb") as fp:
        fp.seek(TiB - len(tail))
        assert fp.read() == tail


def test_hostile_requests_leave_memory_bounded(mount):
    m = mount()
    base = rss_mib(m.proc.pid)
    # names and xattrs past their limits
    with pytest.raises(OSError) as e:
        (m.path / ("n" * 256)).write_bytes(b"")
    assert e.value.errno == errno.ENAMETOOLONG
    (m.path / ("n" * 255)).write_bytes(b"ok")
    victim = m.path / ("n" * 255)
    with pytest.raises(OSError) as e:
        os.setxattr(victim, "user.big", b"v" * 65537)
    assert e.value.errno in (errno.E2BIG, errno.ERANGE, errno.ENOSPC)
    # offsets past the largest file
    fd = os.open(m.path / "far", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for off in (MAX_FILE, MAX_FILE + MiB, (1 << 62)):
            with pytest.raises(OSError) as e:
                os.pwrite(fd, b"a", off)
            assert e.value.errno in (errno.EFBIG, errno.EINVAL)
        assert os.pread(fd, 4096, 1 << 50) == b""
        # reserving far more than the disk holds
        with pytest.raises(OSError) as e:
            os.posix_fallocate(fd, 0, 8 * TiB)
        assert e.value.errno in (errno.ENOSPC, errno.EFBIG)
        src = os.open(m.path / ("n" * 255), os.O_RDONLY)
        try:
            with pytest.raises(OSError) as e:
                os.copy_file_range(src, fd, 2, 0, MAX_FILE)
            assert e.value.errno in (errno.EFBIG, errno.EINVAL)
        finally:
            os.close(src)
    finally:
        os.close(fd)
    # a little written into many files at once, in the middle of a slot each:
    # every one would hold a 1 MiB buffer if nothing bounded them. What may
    # stay: 64 MiB of write buffers, the 64 MiB chunk cache (docs/USAGE.md)
    fds = [os.open(m.path / f"many{i}", os.O_RDWR | os.O_CREAT, 0o644) for i in range(400)]
    try:
        for i, fd in enumerate(fds):
            for s in range(4):
                os.pwrite(fd, os.urandom(64), s * MiB + 512 * 1024)
        assert rss_mib(m.proc.pid) < base + 100
        for i, fd in enumerate(fds):
            assert len(os.pread(fd, 64, 3 * MiB + 512 * 1024)) == 64
    finally:
        for fd in fds:
            os.close(fd)
    assert rss_mib(m.proc.pid) < base + 160
    assert_alive(m)


def fallocate(*args):
    subprocess.run(["fallocate", *map(str, args)], check=True, capture_output=True)


def both(tmp_path, m, name, data):
    """The same file on the mount and in a native directory on the same disk."""
    native = tmp_path / "native"
    native.mkdir(exist_ok=True)
    a, b = m.path / name, native / name
    for p in (a, b):
        p.write_bytes(data)
    return a, b


def same(a, b, blocks=True):
    assert a.stat().st_size == b.stat().st_size
    assert a.read_bytes() == b.read_bytes()
    if blocks:
        assert du_bytes(a) == du_bytes(b), (du_bytes(a), du_bytes(b))


def test_fallocate_modes_as_on_ext4(mount, tmp_path):
    m = mount()
    # mode 0: reserve, size grows, reads are zeros, du counts it, statfs moves
    free_before = os.statvfs(m.path).f_bavail * os.statvfs(m.path).f_frsize
    a, b = both(tmp_path, m, "reserve", b"")
    for p in (a, b):
        fallocate("-l", 64 * MiB, p)
    same(a, b)
    free_after = os.statvfs(m.path).f_bavail * os.statvfs(m.path).f_frsize
    assert free_before - free_after >= 60 * MiB
    # a write into the reserved range reads back, the rest stays zeros
    for p in (a, b):
        with open(p, "r+b") as fp:
            fp.seek(3 * MiB + 100)
            fp.write(b"hello")
    same(a, b)
    # KEEP_SIZE: the size stays
    data = os.urandom(3 * MiB + 1234)
    a, b = both(tmp_path, m, "keep", data)
    for p in (a, b):
        fallocate("-n", "-o", MiB, "-l", 4 * MiB, p)
    same(a, b, blocks=False)
    # PUNCH_HOLE: aligned, the slots go (du as on ext4); unaligned, zeros
    data = os.urandom(6 * MiB)
    a, b = both(tmp_path, m, "punch", data)
    os.sync()
    for p in (a, b):
        fallocate("-p", "-o", MiB, "-l", 2 * MiB, p)
    same(a, b)
    for p in (a, b):
        fallocate("-p", "-o", 4 * MiB + 100, "-l", 300000, p)
    same(a, b, blocks=False)
    assert du_bytes(a) <= 4 * MiB
    # ZERO_RANGE, inside and past the end
    data = os.urandom(5 * MiB + 77)
    a, b = both(tmp_path, m, "zero", data)
    for p in (a, b):
        fallocate("-z", "-o", 123456, "-l", 2 * MiB, p)
        fallocate("-z", "-o", 5 * MiB, "-l", 3 * MiB, p)
    same(a, b, blocks=False)
    for p in (a, b):
        fallocate("-z", "-n", "-o", 7 * MiB, "-l", 3 * MiB, p)
    same(a, b, blocks=False)
    # -d digs holes where the data is zeros
    data = os.urandom(MiB) + bytes(2 * MiB) + os.urandom(MiB)
    a, b = both(tmp_path, m, "dig", data)
    os.sync()
    for p in (a, b):
        fallocate("-d", p)
    same(a, b)
    # modes FUSE cannot do here
    fd = os.open(a, os.O_RDWR)
    try:
        with pytest.raises(OSError) as e:
            fallocate_raw(fd, 0x08, 0, MiB)  # FALLOC_FL_COLLAPSE_RANGE
        assert e.value.errno == errno.EOPNOTSUPP
    finally:
        os.close(fd)
    # everything survives a remount
    want = {p.name: p.read_bytes() for p in (tmp_path / "native").iterdir()}
    m.stop()
    m = mount()
    for name, content in want.items():
        assert (m.path / name).read_bytes() == content, name


def fallocate_raw(fd, mode, off, length):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    if libc.fallocate(fd, mode, off, length) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)


def acl_tree(root):
    (root / "album").mkdir(parents=True)
    (root / "album" / "photo.jpg").write_bytes(os.urandom(50000))
    (root / "plain").mkdir()
    (root / "plain" / "notes.txt").write_text("no acl here\n")
    (root / "shared.txt").write_text("shared\n")
    os.chmod(root / "album", 0o750)
    os.chmod(root / "shared.txt", 0o640)
    for args in (["-m", "u:nobody:rx", root / "album"],
                 ["-d", "-m", "u:nobody:rx", root / "album"],
                 ["-m", "g:nogroup:rw", root / "shared.txt"]):
        r = run("setfacl", *args)
        assert r.returncode == 0, r.stderr


def getfacl_all(root):
    """Every file's ACL under root, by path (getfacl -R lists in readdir order)."""
    r = run("getfacl", "-R", "-p", "--absolute-names", root)
    assert r.returncode == 0, r.stderr
    blocks = [b for b in r.stdout.replace(str(root), "ROOT").split("\n\n") if b.strip()]
    return dict(sorted((b.splitlines()[0], b) for b in blocks))


def test_acls_round_trip(mount, tmp_path):
    m = mount()
    src = tmp_path / "src"
    acl_tree(src)
    # setfacl/getfacl on the mount
    f = m.path / "f"
    f.write_text("x")
    os.chmod(f, 0o640)
    assert run("setfacl", "-m", "u:nobody:rw", f).returncode == 0
    out = run("getfacl", "-p", f).stdout
    assert "user:nobody:rw-" in out and "mask::rw-" in out
    assert oct(f.stat().st_mode & 0o777) == oct(0o660)  # the mask is the group bits
    os.chmod(f, 0o600)
    assert "mask::---" in run("getfacl", "-p", f).stdout
    assert run("setfacl", "-b", f).returncode == 0
    assert "user:nobody" not in run("getfacl", "-p", f).stdout
    # rsync -aHAX in, then a second run with checksums sends nothing
    dst = m.path / "tree"
    r = run("rsync", "-aHAX", f"{src}/", f"{dst}/")
    assert r.returncode == 0, r.stderr
    assert getfacl_all(dst) == getfacl_all(src)
    for p in ("album", "album/photo.jpg", "plain", "shared.txt"):
        assert (dst / p).stat().st_mode == (src / p).stat().st_mode, p
    r = run("rsync", "-aHAXc", "--itemize-changes", f"{src}/", f"{dst}/")
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout
    # default ACLs pass on to what is created in the mount
    (dst / "album" / "new.jpg").write_bytes(b"new")
    assert "user:nobody:r-x" in run("getfacl", "-p", dst / "album" / "new.jpg").stdout
    (dst / "album" / "new.jpg").unlink()
    # and out again: rsync and cp -a bring back exactly the source's ACLs
    back = tmp_path / "back"
    r = run("rsync", "-aHAX", f"{dst}/", f"{back}/")
    assert r.returncode == 0, r.stderr
    assert getfacl_all(back) == getfacl_all(src)
    copy = tmp_path / "copy"
    r = run("cp", "-a", dst, copy)
    assert r.returncode == 0, r.stderr
    assert getfacl_all(copy) == getfacl_all(src)
    # survives a remount
    m.stop()
    m = mount()
    assert getfacl_all(m.path / "tree") == getfacl_all(src)


def test_acl_denies_a_user(mount, public_mnt, tmp_path):
    m = mount(mnt=public_mnt)
    secret = m.path / "secret.txt"
    secret.write_text("for root and bin only\n")
    os.chmod(secret, 0o644)
    as_nobody = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "cat"]
    assert run(*as_nobody, secret).returncode == 0
    assert run("setfacl", "-m", "u:nobody:---", secret).returncode == 0
    r = run(*as_nobody, secret)
    assert r.returncode != 0 and "Permission denied" in r.stderr
    assert run("setfacl", "-x", "u:nobody", secret).returncode == 0
    assert run(*as_nobody, secret).returncode == 0


def test_reading_a_large_log_keeps_the_daemon_small(mount):
    """Every read touches the log through its mappings; those pages would stay
    in the daemon's resident set (VmRSS) until the kernel wanted them back,
    so reading 768 MiB made it look 768 MiB large. The store drops them from
    the mappings past 256 MiB (they stay in the page cache) and gives freed
    heap back: within seconds of the reads the daemon is small again."""
    m = mount()
    blobs = {}
    for i in range(12):
        blobs[i] = os.urandom(64 * MiB)
        (m.path / f"big{i}").write_bytes(blobs[i])
    for i in range(12):
        with open(m.path / f"big{i}", "rb") as f:  # from the daemon, not the cache
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            assert f.read() == blobs[i]
    blobs.clear()
    deadline = time.time() + 20
    while rss_mib(m.proc.pid) > 400 and time.time() < deadline:
        time.sleep(0.5)
    assert rss_mib(m.proc.pid) <= 400
    assert_alive(m)
