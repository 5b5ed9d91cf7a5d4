"""The content hash as an xattr (user.caskfs.hash, .chunks, .replicas): equal
for equal bytes however they were written, read-only, never listed (so rsync
-X and cp -a leave it behind), and scripts/tree-hash comparing two trees of
10,000 files without reading their data. docs/USAGE.md, docs/FORMAT.md."""
import errno
import json
import os
import random
import subprocess

import pytest

from conftest import ROOT
from test_replication import Cluster, eventually

HASH = "user.caskfs.hash"


def xhash(p):
    return os.getxattr(p, HASH).decode()


def read_bytes(caskfs_bin, data):
    r = subprocess.run([caskfs_bin, "status", "--json", str(data)], capture_output=True,
                       text=True, check=True)
    return json.loads(r.stdout)["stats"]["caskfs_read_bytes"]


def test_hash_equal_for_equal_bytes_written_differently(mount, tmp_path, caskfs_bin):
    m = mount()
    p = m.path
    rng = random.Random(1)
    src = tmp_path / "src.bin"
    data = rng.randbytes(3 * 1024 * 1024 + 12345)
    src.write_bytes(data)
    subprocess.run(["cp", str(src), str(p / "whole")], check=True)
    # the other copy by rsync in place, in pieces: a file with the same size but
    # other bytes in half its blocks, which rsync rewrites where they differ
    other = bytearray(data)
    for off in range(0, len(other), 256 * 1024):
        if (off // (256 * 1024)) % 2:
            other[off:off + 1000] = rng.randbytes(1000)
    (p / "pieces").write_bytes(bytes(other))
    subprocess.run(["rsync", "-I", "--inplace", "--no-whole-file", "--block-size=65536",
                    str(src), str(p / "pieces")], check=True)
    assert (p / "pieces").read_bytes() == data
    h = xhash(p / "whole")
    assert len(h) == 32 and int(h, 16) >= 0
    assert xhash(p / "pieces") == h
    # the same as computed from the bytes by caskfs hash, anywhere
    r = subprocess.run([caskfs_bin, "hash", str(src)], capture_output=True, text=True)
    assert r.stdout.split()[0] == h
    # a one-byte change, buffered and not yet committed, shows at once
    with open(p / "pieces", "r+b") as f:
        f.seek(2 * 1024 * 1024 + 7)
        f.write(bytes([data[2 * 1024 * 1024 + 7] ^ 1]))
        f.flush()
        assert xhash(p / "pieces") != h
    # a hole and stored zeros are the same bytes, so the same hash
    with open(p / "sparse", "wb") as f:
        f.truncate(5_000_000)
    (p / "zeros").write_bytes(bytes(5_000_000))
    assert xhash(p / "sparse") == xhash(p / "zeros")
    chunks = os.getxattr(p / "whole", "user.caskfs.chunks").decode().splitlines()
    assert [c.split()[:2] for c in chunks] == [["0", "1048576"], ["1", "1048576"],
                                                ["2", "1048576"], ["3", "12345"]]
    reps = os.getxattr(p / "whole", "user.caskfs.replicas").decode().splitlines()
    assert [r.split()[0] for r in reps] == [c.split()[2] for c in chunks]
    # read-only, not listed, only for files
    for call in (lambda: os.setxattr(p / "whole", HASH, b"x"),
                 lambda: os.removexattr(p / "whole", HASH)):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EPERM
    assert os.listxattr(p / "whole") == []
    os.mkdir(p / "d")
    with pytest.raises(OSError) as e:
        os.getxattr(p / "d", HASH)
    assert e.value.errno == errno.ENODATA
    m.stop()
    m = mount()
    assert xhash(p / "whole") == h


def test_copies_out_carry_no_caskfs_xattrs(mount, tmp_path):
    p = mount().path
    (p / "dir").mkdir()
    (p / "dir" / "f").write_bytes(os.urandom(100_000))
    os.setxattr(p / "dir" / "f", "user.tag", b"kept")
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["rsync", "-aX", f"{p}/dir/", f"{out}/rsync/"], check=True)
    subprocess.run(["cp", "-a", f"{p}/dir", f"{out}/cp"], check=True)
    for f in (out / "rsync" / "f", out / "cp" / "f"):
        assert os.listxattr(f) == ["user.tag"], f
        assert os.getxattr(f, "user.tag") == b"kept"


def test_hash_is_the_same_on_every_mount_of_a_cluster(mount, tmp_path):
    c = Cluster(mount, tmp_path)
    for i in range(3):
        c.start(i)
    data = os.urandom(2_500_000)
    (c.path(0) / "song.ogg").write_bytes(data)
    h = xhash(c.path(0) / "song.ogg")
    for i in (1, 2):
        assert eventually(lambda: xhash(c.path(i) / "song.ogg") == h, timeout=5), i
    reps = os.getxattr(c.path(1) / "song.ogg", "user.caskfs.replicas").decode()
    for line in reps.splitlines():  # N=3 over 3 nodes: every node holds every chunk
        assert sorted(w.replace("(this)", "") for w in line.split()[1:]) == sorted(c.addrs)


def test_tree_hash_finds_exactly_the_changed_files_without_reading(mount, caskfs_bin):
    m = mount()
    p = m.path
    rng = random.Random(7)
    files = [f"d{i % 50}/f{i}" for i in range(10_000)]
    bodies = {f: rng.randbytes(rng.randrange(1, 3000)) for f in files}
    changed = set(rng.sample(files, 7))
    for side in ("a", "b"):
        for d in range(50):
            os.makedirs(p / side / f"d{d}")
        for f in files:
            body = bodies[f]
            if side == "b" and f in changed:
                body = body[:-1] + bytes([body[-1] ^ 0x40])
            (p / side / f).write_bytes(body)
    os.unlink(p / "b" / files[3])
    (p / "b" / "extra").write_text("new")
    before = read_bytes(caskfs_bin, m.data)
    tool = str(ROOT / "scripts" / "tree-hash")
    r = subprocess.run([tool, "--diff", str(p / "a"), str(p / "b")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    want = sorted([f"M {f}" for f in changed - {files[3]}] + [f"- {files[3]}", "+ extra"],
                  key=lambda s: s[2:])
    assert r.stdout.splitlines() == want
    assert read_bytes(caskfs_bin, m.data) == before  # not one byte of data read
    with open("/proc/sys/vm/drop_caches", "w") as f:  # the counter does count reads
        f.write("1")
    assert (p / "a" / files[0]).read_bytes() == bodies[files[0]]
    assert read_bytes(caskfs_bin, m.data) >= before + len(bodies[files[0]])
    # a listing saved from the mount compares with a copy outside it
    r = subprocess.run([tool, str(p / "a")], capture_output=True, text=True, check=True)
    assert len(r.stdout.splitlines()) == 10_000


MiB = 1024 * 1024


def test_hash_of_a_clipped_or_extended_slot_is_that_of_its_bytes(mount, tmp_path, caskfs_bin):
    """A truncate into a slot, then an extension (by truncate, or by a write
    further on), leaves slots whose chunk is not the bytes they read: the
    hash is still that of a file written afresh with the same bytes."""
    p = mount().path
    rng = random.Random(3)
    x = rng.randbytes(2 * MiB + 500_000)
    cases = {
        "cut": lambda f: f.truncate(MiB + 200_000),
        "cut-grown": lambda f: (f.truncate(MiB + 200_000), f.truncate(3 * MiB + 7)),
        "cut-written": lambda f: (f.truncate(MiB + 200_000), f.seek(4 * MiB),
                                  f.write(b"after the gap")),
        "short-then-far": lambda f: (f.truncate(100), f.seek(5 * MiB), f.write(b"far")),
    }
    for name, change in cases.items():
        with open(p / name, "wb") as f:
            f.write(x)
            f.flush()
            os.fsync(f.fileno())  # the whole slots committed before the cut
            change(f)
        got = (p / name).read_bytes()
        (p / (name + ".fresh")).write_bytes(got)
        (tmp_path / name).write_bytes(got)
        h = xhash(p / name)
        assert h == xhash(p / (name + ".fresh")), name
        r = subprocess.run([caskfs_bin, "hash", str(tmp_path / name)], capture_output=True,
                           text=True, check=True)
        assert r.stdout.split()[0] == h, name
    assert xhash(p / "cut") != xhash(p / "cut-grown")


def test_chunk_lists_of_a_large_sparse_file(mount):
    """user.caskfs.chunks and .replicas of a sparse 2 GiB file list the slots
    that hold bytes; a file with more of them than 64 KiB of lines (the
    kernel's limit for an xattr) answers E2BIG, never a cut list."""
    p = mount().path
    with open(p / "big", "wb") as f:
        f.truncate(2048 * MiB)
        for slot in (0, 700, 1500, 2047):
            f.seek(slot * MiB + 10)
            f.write(bytes([slot % 251 + 1]) * 1000)
    assert os.stat(p / "big").st_size == 2048 * MiB
    lines = os.getxattr(p / "big", "user.caskfs.chunks").decode().splitlines()
    assert [ln.split()[0] for ln in lines] == ["0", "700", "1500", "2047"]
    reps = os.getxattr(p / "big", "user.caskfs.replicas").decode().splitlines()
    assert [r.split()[0] for r in reps] == [ln.split()[2] for ln in lines]
    # one byte in every slot: 2,048 lines, over 64 KiB
    with open(p / "big", "r+b") as f:
        for slot in range(2048):
            f.seek(slot * MiB)
            f.write(bytes([slot % 251 + 1]))
    for name in ("user.caskfs.chunks", "user.caskfs.replicas"):
        with pytest.raises(OSError) as e:
            os.getxattr(p / "big", name)
        assert e.value.errno == errno.E2BIG, name
    assert len(xhash(p / "big")) == 32  # the hash has a fixed size
