"""Three mounts, each in its own network namespace on a bridge (the daemons
entered into the namespace with nsenter, so their FUSE mounts are seen
here), N=3 W=2, with a shared secret. The third is cut off the network
while all three go on being used. The two that still reach each other
write as before; the one cut off still reads everything, renames and
removes (the namespace needs no quorum), and a new file's bytes, which
cannot reach W=2 nodes, fail with EIO at fsync instead of hanging or being
acknowledged. After it is healed the three trees are the same, byte for
byte, with every side's successful changes, a rename on one side and an
edit of the same file on the other both kept. Reference:
docs/REPLICATION.md."""
import errno
import hashlib
import os
import subprocess
import time

from test_netns import Net, _needs_netns, sh, wait  # noqa: F401 (the fixture)

MOUNTS = 3
MARK = ".caskfs-conflict-"


class MountNet(Net):
    """Net, with `caskfs mount` daemons in place of `caskfs serve`."""

    def __init__(self, caskfs_bin, tmp_path):
        super().__init__(caskfs_bin, tmp_path)
        self.ns = self.ns[:MOUNTS]
        self.addrs = self.addrs[:MOUNTS]
        self.procs = [None] * MOUNTS
        self.mnt = [tmp_path / f"m{i}" for i in range(MOUNTS)]

    def start(self, i):
        self.mnt[i].mkdir(exist_ok=True)
        peers = ",".join(a for j, a in enumerate(self.addrs) if j != i)
        log = open(self.tmp / f"n{i}.log", "ab")
        # nsenter --net keeps this mount namespace, so the mount is seen here
        self.procs[i] = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.ns[i]}", self.bin, "mount", "-f",
             str(self.tmp / f"d{i}"), str(self.mnt[i]), "--listen", self.addrs[i],
             "--peers", peers, "--secret-file", str(self.secret), "--node-id", str(i + 1),
             "--sync-interval", "1"], stdout=log, stderr=log)
        assert wait(lambda: os.path.ismount(self.mnt[i]), timeout=30), self.log(i)

    def log(self, i):
        return open(self.tmp / f"n{i}.log", errors="replace").read()

    def down(self):
        for m in self.mnt:
            if os.path.ismount(m):
                subprocess.run(["fusermount3", "-u", str(m)], capture_output=True)
                if os.path.ismount(m):
                    subprocess.run(["fusermount3", "-uz", str(m)], capture_output=True)
        for p in self.procs:
            if p is not None:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        super().down()


def tree(root):
    """{relative path: sha256 of the bytes (or 'dir')} of everything under root."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs:
            out[os.path.relpath(os.path.join(d, n), root)] = "dir"
        for n in files:
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def test_three_mounts_one_cut_off_and_healed(caskfs_bin, tmp_path):
    net = MountNet(caskfs_bin, tmp_path)
    try:
        net.up()
        for i in range(MOUNTS):
            net.start(i)
        m0, m1, m2 = net.mnt
        assert wait(lambda: all((net.stat(i, "caskfs_map_epoch") or 0) >= 1
                                for i in range(MOUNTS))), [net.log(i) for i in range(MOUNTS)]
        (m0 / "photos").mkdir()
        base = {f"photos/p{i}.jpg": os.urandom(300_000 + i * 77_777) for i in range(6)}
        base["shared.txt"] = b"the first version\n" * 100
        base["old.bin"] = os.urandom(50_000)
        for name, data in base.items():
            write(m0 / name, data)
        want = tree(m0)
        assert wait(lambda: tree(m1) == want and tree(m2) == want, timeout=60), \
            (tree(m1), tree(m2))

        net.cut(2, True)
        # the side that still has a quorum
        write(m0 / "photos" / "from0.jpg", os.urandom(1_200_000))
        write(m1 / "from1.txt", b"written by the second mount\n")
        write(m0 / "shared.txt", b"changed on mount 0 while apart\n")
        edited = os.urandom(400_000)
        write(m0 / "photos" / "p1.jpg", edited)
        # the side cut off: reads, namespace changes, and a clean refusal
        for name, data in base.items():
            assert (m2 / name).read_bytes() == data, name
        os.unlink(m2 / "old.bin")
        os.rename(m2 / "photos" / "p1.jpg", m2 / "photos" / "p1-renamed.jpg")
        (m2 / "made-while-cut").mkdir()
        t = time.time()
        try:
            write(m2 / "photos" / "from2.jpg", os.urandom(900_000))
            raise AssertionError("a write no quorum holds was acknowledged")
        except OSError as e:
            assert e.errno == errno.EIO, e
        assert time.time() - t < 30
        assert wait(lambda: (m1 / "photos" / "from0.jpg").exists(), timeout=30)
        assert not (m2 / "photos" / "from0.jpg").exists()
        assert (m0 / "old.bin").exists()

        net.cut(2, False)

        def converged():
            t = [tree(m) for m in net.mnt]
            return t[0] == t[1] == t[2] and t[0]
        assert wait(converged, timeout=90), [sorted(tree(m).items()) for m in net.mnt]
        final = tree(m0)
        assert "photos/from0.jpg" in final and "from1.txt" in final
        assert final.get("made-while-cut") == "dir"
        assert "old.bin" not in final
        assert "photos/p1-renamed.jpg" in final and "photos/p1.jpg" not in final
        for m in net.mnt:
            assert (m / "shared.txt").read_bytes() == b"changed on mount 0 while apart\n"
            assert (m / "photos" / "p1-renamed.jpg").read_bytes() == edited
        for name, data in base.items():
            if name not in ("shared.txt", "old.bin", "photos/p1.jpg"):
                assert (m2 / name).read_bytes() == data, name
        assert not any(MARK in n for n in final), sorted(final)
    finally:
        net.down()
