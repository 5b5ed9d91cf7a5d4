"""Conflict copies: two mounts that change the same file (or bind one name to
two objects) while apart end, once joined, with the later version under the
name and the other kept beside it as NAME.caskfs-conflict-NODE-STAMP, byte
for byte, under the same name on every mount, counted in status and listed
in /.caskfs/conflicts. docs/REPLICATION.md ("Conflict copies")."""
import json
import os
import subprocess
import time

import pytest

from test_replication import Cluster, eventually, tree

MARK = ".caskfs-conflict-"


@pytest.fixture
def cluster(mount, tmp_path):
    c = Cluster(mount, tmp_path)
    for i in range(3):
        c.start(i)
    return c


def apart(cluster, edit_a, edit_b):
    """A edits while B is down, then B edits (later) while A is down; join."""
    cluster.stop(1)
    edit_a(cluster.path(0))
    time.sleep(0.3)  # committed, and pushed to C
    cluster.stop(0)
    cluster.start(1)
    time.sleep(0.05)
    edit_b(cluster.path(1))
    time.sleep(0.3)
    cluster.start(0)


def kept(p, prefix):
    return sorted(n for n in os.listdir(p) if n.startswith(prefix + MARK))


def test_the_loser_of_a_concurrent_edit_is_kept_everywhere(cluster, caskfs_bin):
    a, b, c = (cluster.path(i) for i in range(3))
    original, on_a, on_b = os.urandom(300_000), os.urandom(1_500_000), os.urandom(200_000)
    (a / "doc.bin").write_bytes(original)
    (a / "other.txt").write_text("untouched")
    for p in (b, c):
        assert eventually(lambda: (p / "doc.bin").exists()
                          and (p / "doc.bin").read_bytes() == original, timeout=5)
    apart(cluster, lambda p: (p / "doc.bin").write_bytes(on_a),
          lambda p: (p / "doc.bin").write_bytes(on_b))
    for p in (a, b, c):
        assert eventually(lambda: (p / "doc.bin").read_bytes() == on_b
                          and len(kept(p, "doc.bin")) == 1, timeout=10), (p, os.listdir(p))
    names = {kept(p, "doc.bin")[0] for p in (a, b, c)}
    assert len(names) == 1, names  # the same name on every mount
    name = names.pop()
    for p in (a, b, c):
        assert (p / name).read_bytes() == on_a  # the loser, byte for byte
        st, orig = os.stat(p / name), os.stat(p / "doc.bin")
        assert (st.st_mode, st.st_uid, st.st_gid) == (orig.st_mode, orig.st_uid, orig.st_gid)
    assert eventually(lambda: tree(a) == tree(b) == tree(c), timeout=10)
    assert sorted(os.listdir(a)) == sorted(["doc.bin", "other.txt", name])
    # counted and listed, never EIO
    for i, p in enumerate((a, b, c)):
        st = json.loads(subprocess.run([caskfs_bin, "status", "--json", cluster.addrs[i]],
                                       capture_output=True, text=True).stdout)
        assert st["stats"]["caskfs_meta_conflicts"] == 1
        listed = (p / ".caskfs" / "conflicts").read_text().split()
        assert listed[0] == "/" + name
    # removing the copy is an ordinary remove, and it stays removed
    os.unlink(a / name)
    for p in (b, c):
        assert eventually(lambda: not (p / name).exists(), timeout=5)


def test_a_file_against_a_directory_keeps_both(cluster):
    a, b, c = (cluster.path(i) for i in range(3))
    (a / "x").write_text("seed")
    os.unlink(a / "x")
    time.sleep(0.3)

    def make_dir(p):
        os.mkdir(p / "x")
        (p / "x" / "inside.txt").write_text("kept")

    apart(cluster, make_dir, lambda p: (p / "x").write_text("a file, later"))
    for p in (a, b, c):
        assert eventually(lambda: (p / "x").is_file() and len(kept(p, "x")) == 1,
                          timeout=10), (p, os.listdir(p))
    name = kept(a, "x")[0]
    for p in (a, b, c):
        assert (p / "x").read_text() == "a file, later"
        assert kept(p, "x") == [name]
        assert (p / name).is_dir() and (p / name / "inside.txt").read_text() == "kept"
    assert eventually(lambda: tree(a) == tree(b) == tree(c), timeout=10)


def test_edits_made_one_after_the_other_keep_nothing(cluster, tmp_path):
    a, b, c = (cluster.path(i) for i in range(3))
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        (src / f"f{i}").write_bytes(os.urandom(50_000))
    subprocess.run(["rsync", "-a", f"{src}/", f"{a}/"], check=True)
    for k, (w, r) in enumerate(((a, b), (b, c), (c, a), (a, b))):
        data = os.urandom(100_000 + k)
        (w / "f0").write_bytes(data)  # each edit made from the version before
        assert eventually(lambda: (r / "f0").read_bytes() == data, timeout=5)
    for i in range(5):  # rsync replaces files by rename over them
        (src / f"f{i}").write_bytes(os.urandom(40_000))
    subprocess.run(["rsync", "-a", f"{src}/", f"{b}/"], check=True)
    assert eventually(lambda: tree(a) == tree(b) == tree(c), timeout=10)
    for p in (a, b, c):
        assert not [n for n in os.listdir(p) if MARK in n], os.listdir(p)
        assert (p / ".caskfs" / "conflicts").read_text() == ""
