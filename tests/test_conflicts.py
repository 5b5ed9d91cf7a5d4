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


# ---- renames made apart (docs/REPLICATION.md, "Renames made apart") ----

def settled(cluster, caskfs_bin, listing):
    """Every mount shows listing (path -> (bytes, or None for a directory;
    link count)) and nothing else, the same tree everywhere; then, unmounted,
    fsck finds nothing on any node."""
    import hashlib
    mounts = [cluster.path(i) for i in range(3)]

    def shown(p):  # tree(): mode, nlink, mtime, xattrs[, size, sha256]
        return {rel: (item[5] if len(item) > 5 else None, item[1])
                for rel, item in tree(p).items()}

    want = {rel: (None if data is None else hashlib.sha256(data).hexdigest(), links)
            for rel, (data, links) in listing.items()}
    for p in mounts:
        assert eventually(lambda: shown(p) == want, timeout=10), (p, shown(p), want)
    assert eventually(lambda: tree(mounts[0]) == tree(mounts[1]) == tree(mounts[2]),
                      timeout=10)
    for i in range(3):
        cluster.stop(i)
    for i in range(3):
        r = subprocess.run([caskfs_bin, "fsck", str(cluster.tmp / f"d{i}")],
                           capture_output=True, text=True)
        assert r.returncode == 0, (i, r.stdout, r.stderr)


def seeded(cluster, make):
    make(cluster.path(0))
    want = sorted(os.listdir(cluster.path(0)))
    for i in (1, 2):
        assert eventually(lambda: sorted(os.listdir(cluster.path(i))) == want, timeout=5)
    time.sleep(0.2)


def test_a_file_renamed_to_two_names_apart_ends_under_the_later(cluster, caskfs_bin):
    data = os.urandom(2_500_000)
    seeded(cluster, lambda p: (p / "a.jpg").write_bytes(data))
    apart(cluster, lambda p: os.rename(p / "a.jpg", p / "b.jpg"),
          lambda p: os.rename(p / "a.jpg", p / "c.jpg"))
    settled(cluster, caskfs_bin, {"c.jpg": (data, 1)})


def test_a_directory_renamed_apart_has_one_parent(cluster, caskfs_bin):
    inside = os.urandom(70_000)

    def make(p):
        for d in ("d", "p", "q"):
            os.mkdir(p / d)
        (p / "d" / "f").write_bytes(inside)

    seeded(cluster, make)
    apart(cluster, lambda p: os.rename(p / "d", p / "p" / "d1"),
          lambda p: os.rename(p / "d", p / "q" / "d2"))
    settled(cluster, caskfs_bin, {"p": (None, 2), "q": (None, 3), "q/d2": (None, 2),
                                  "q/d2/f": (inside, 1)})


def test_a_rename_against_an_unlink_keeps_the_file(cluster, caskfs_bin):
    data = os.urandom(10_000)
    seeded(cluster, lambda p: (p / "a").write_bytes(data))
    apart(cluster, lambda p: os.rename(p / "a", p / "b"), lambda p: os.unlink(p / "a"))
    settled(cluster, caskfs_bin, {"b": (data, 1)})


@pytest.mark.parametrize("rename_first", [True, False])
def test_a_rename_against_an_edit_keeps_the_edit_under_the_name(cluster, caskfs_bin,
                                                               rename_first):
    old, new = os.urandom(1_200_000), os.urandom(900_000)
    seeded(cluster, lambda p: (p / "a").write_bytes(old))

    def rename(p):
        os.rename(p / "a", p / "b")

    def edit(p):
        (p / "a").write_bytes(new)

    apart(cluster, *((rename, edit) if rename_first else (edit, rename)))
    settled(cluster, caskfs_bin, {"b": (new, 1)})


def test_a_hard_link_is_not_taken_for_a_rename(cluster, caskfs_bin):
    data = os.urandom(30_000)
    seeded(cluster, lambda p: (p / "a").write_bytes(data))
    apart(cluster, lambda p: os.link(p / "a", p / "l"), lambda p: os.rename(p / "a", p / "c"))
    settled(cluster, caskfs_bin, {"l": (data, 2), "c": (data, 2)})
