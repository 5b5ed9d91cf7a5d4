"""A cluster that grows and shrinks: five nodes (mounts and `caskfs serve`
nodes mixed), N=3. Every object stays on exactly its three owners through
background anti-entropy rounds, a node added with `caskfs cluster add`, a
node removed, a node killed for good and removed, and a node killed in the
middle of a move. Reference: docs/REPLICATION.md, docs/OPERATIONS.md."""
import hashlib
import os
import random
import socket
import subprocess
import threading
import time

import pytest
from pymemcache.client.base import Client

from conftest import Node, free_port

OBJECTS = 2000


def local_records(addr):
    """{key: size-ish} of the live records a node holds itself (xls is local)."""
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(b"xls\r\n")
    data = b""
    while not data.endswith(b"END\r\n"):
        chunk = s.recv(1 << 20)
        assert chunk, "connection closed during xls"
        data += chunk
    s.close()
    keys = set()
    for line in data.decode().split("\r\n")[:-2]:
        parts = line.split()
        if parts[-1] != "T":
            keys.add(parts[0])
    return keys


def copies(addrs):
    """{key: set of addresses holding it}."""
    out = {}
    for a in addrs:
        for k in local_records(a):
            out.setdefault(k, set()).add(a)
    return out


def stats(addr):
    host, port = addr.rsplit(":", 1)
    return {k.decode(): v for k, v in Client((host, int(port)), timeout=10).stats().items()}


def eventually(check, timeout=20.0, step=0.2):
    deadline = time.time() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.time() > deadline:
            return last
        time.sleep(step)


class Cluster:
    """Five nodes on 127.0.0.1: mounts 0 and 1, serve nodes 2, 3 and 4."""

    def __init__(self, caskfs_bin, tmp_path, mount, extra=()):
        self.bin = caskfs_bin
        self.tmp = tmp_path
        self.mount_fixture = mount
        self.extra = ["--sync-interval", "1", *extra]
        self.addrs = [f"127.0.0.1:{free_port()}" for _ in range(5)]
        self.serves = {}
        self.mounts = {}
        self.sizes = {}

    def peers(self, i):
        return ",".join(a for j, a in enumerate(self.addrs) if j != i)

    def start(self):
        for i in (2, 3, 4):
            port = int(self.addrs[i].rsplit(":", 1)[1])
            n = Node(self.bin, self.tmp / f"d{i}", port, self.peers(i).split(","),
                     ["--node-id", str(i + 1), *self.extra])
            self.serves[i] = n.start()
        for i in (0, 1):
            self.mounts[i] = self.mount_fixture(
                data=self.tmp / f"d{i}", mnt=self.tmp / f"m{i}",
                extra=["--listen", self.addrs[i], "--peers", self.peers(i),
                       "--node-id", str(i + 1), *self.extra])
        # the nodes agree on the first cluster map among themselves
        assert eventually(lambda: all(stats(a)["caskfs_map_epoch"] >= 1 for a in self.addrs)), \
            "the five nodes never agreed on a cluster map"

    def stop(self):
        for n in self.serves.values():
            n.stop()

    def write(self, count=OBJECTS, seed=1, sizes=(100, 1500)):
        rng = random.Random(seed)
        clients = [Client(tuple((a.split(":")[0], int(a.split(":")[1]))), timeout=10,
                          default_noreply=False) for a in self.addrs]
        for i in range(count):
            key = f"o/{seed}/{i}"
            val = rng.randbytes(rng.randrange(*sizes))
            assert clients[i % len(clients)].set(key, val) is True
            self.sizes[key] = len(val)

    def run(self, *args, timeout=120):
        return subprocess.run([self.bin, *map(str, args)], capture_output=True, text=True,
                              timeout=timeout)

    def moved_bytes(self, addrs):
        total = 0
        for a in addrs:
            try:
                st = stats(a)
            except OSError:
                continue
            # a read during the move may put a copy on a new owner first (read repair)
            total += st["caskfs_rebalance_bytes_in"] + st["caskfs_rebalance_bytes_out"] + \
                st["caskfs_read_repair_bytes"]
        return total


@pytest.fixture
def cluster(caskfs_bin, tmp_path, mount):
    c = Cluster(caskfs_bin, tmp_path, mount)
    c.start()
    yield c
    c.stop()


def on_exactly(c, addrs, n=3, keys=None):
    """The keys (of those written) not on exactly n of addrs, with where they are."""
    where = copies(addrs)
    keys = keys if keys is not None else c.sizes
    return {k: sorted(where.get(k, ())) for k in keys if len(where.get(k, ())) != n}


def test_objects_stay_on_their_three_owners(cluster):
    c = cluster
    c.write()
    # files through a mount too: their chunks are objects like the others
    for i in range(20):
        (c.tmp / "m0" / f"photo{i}.jpg").write_bytes(os.urandom(50_000 + i * 1000))
    time.sleep(3.5)  # several background rounds (--sync-interval 1) on every node
    bad = on_exactly(c, c.addrs)
    assert not bad, f"{len(bad)} objects not on exactly 3 nodes, e.g. {list(bad.items())[:3]}"
    chunks = {k for k, v in copies(c.addrs).items() if k.startswith("c/")}
    assert len(chunks) >= 20
    assert not on_exactly(c, c.addrs, keys=chunks)
    total = sum(stats(a)["curr_items"] for a in c.addrs)
    assert total == 3 * (OBJECTS + len(chunks))
    # the pairwise dry run finds nothing, over the buckets each pair shares
    for i in range(5):
        for j in range(i + 1, 5):
            r = c.run("sync", "--dry-run", "--data", c.addrs[i], c.addrs[j])
            assert r.returncode == 0, r.stdout + r.stderr
            assert "data: 0 differed" in r.stdout, r.stdout
            assert "buckets both own" in r.stdout, r.stdout
    # a copy lost behind a node's back comes back from a round, and only there
    victim_key = next(iter(c.sizes))
    owners = copies(c.addrs)[victim_key]
    assert len(owners) == 3
    # mounts and serve nodes answer `caskfs kv HOST:PORT stat KEY` for their own copy
    present = [c.run("kv", a, "stat", victim_key).returncode for a in c.addrs]
    assert sorted(present) == [0, 0, 0, 1, 1], present


def test_grow_then_shrink(cluster, caskfs_bin, tmp_path):
    c = cluster
    c.write()
    files = {}
    for i in range(30):
        data = os.urandom(20_000 + 3000 * i)
        (c.tmp / "m0" / f"f{i}").write_bytes(data)
        files[f"f{i}"] = hashlib.sha256(data).hexdigest()
    assert eventually(lambda: all((c.tmp / "m1" / n).exists() for n in files), timeout=10)
    time.sleep(1.5)
    before = copies(c.addrs)
    assert not on_exactly(c, c.addrs, keys=before)

    # a sixth node, started with one seed, learns the map and is added
    port = free_port()
    new = Node(caskfs_bin, tmp_path / "d5", port, [c.addrs[3]],
               ["--node-id", "6", "--sync-interval", "1"])
    new.start()
    addrs6 = c.addrs + [new.addr]
    assert eventually(lambda: stats(new.addr)["caskfs_map_epoch"] >= 1, timeout=10)
    assert stats(new.addr)["caskfs_nodes"] == 5  # not a member yet
    moved0 = c.moved_bytes(addrs6)

    errors = []
    stop = threading.Event()

    def reader():  # every file, checksummed through the other mount, during the move
        while not stop.is_set():
            for name, digest in files.items():
                try:
                    got = hashlib.sha256((c.tmp / "m1" / name).read_bytes()).hexdigest()
                except OSError as e:
                    errors.append(f"{name}: {e}")
                    return
                if got != digest:
                    errors.append(f"{name}: wrong content")
                    return

    t = threading.Thread(target=reader)
    t.start()
    r = c.run("cluster", "add", "--timeout", "60", c.addrs[0], new.addr)
    stop.set()
    t.join()
    assert r.returncode == 0, r.stdout + r.stderr
    assert not errors, errors
    after = copies(addrs6)
    assert not on_exactly(c, addrs6, keys=before), "not every object on exactly 3 nodes"
    # what moved: the objects whose owners changed (about half, for 5 -> 6),
    # each copied once to each new owner
    gained = [k for k in before if after[k] != before[k]]
    assert 0.3 * len(before) < len(gained) < 0.7 * len(before), len(gained)
    changed = sum(len(after[k] - before[k]) *
                  (c.sizes[k] if k in c.sizes else stats_size(addrs6, k)) for k in gained)
    moved = c.moved_bytes(addrs6) - moved0
    ratio = moved / changed
    print(f"\n5 -> 6 nodes: {len(gained)} of {len(before)} objects changed owners; "
          f"{moved} bytes moved for {changed} whose placement changed: {ratio:.3f}x")
    assert 0.99 <= ratio <= 1.2, ratio
    for i in range(5):
        assert c.run("sync", "--dry-run", "--data", addrs6[i], new.addr).returncode == 0

    # remove a serve node: three copies on the others before the command returns
    gone = c.addrs[2]
    r = c.run("cluster", "remove", "--timeout", "60", c.addrs[0], gone)
    assert r.returncode == 0, r.stdout + r.stderr
    rest = [a for a in addrs6 if a != gone]
    assert not on_exactly(c, rest, keys=before)
    assert not local_records(gone) & set(before)
    c.serves[2].stop()

    # kill -9 another for good and remove it: the same, from its peers' copies;
    # what was written while it was dead (its hints) ends on the new owners too
    c.serves[4].kill9()
    dead = c.addrs[4]
    live = [a for a in rest if a != dead]
    cl = Client(tuple((live[0].split(":")[0], int(live[0].split(":")[1]))), timeout=10,
                default_noreply=False)
    late = {f"late/{i}": os.urandom(300) for i in range(100)}
    for k, v in late.items():
        assert cl.set(k, v) is True
    r = c.run("cluster", "remove", "--timeout", "60", c.addrs[1], dead)
    assert r.returncode == 0, r.stdout + r.stderr
    rest = live
    assert not on_exactly(c, rest, keys=before)
    assert not on_exactly(c, rest, keys=late)
    assert all(cl.get(k) == v for k, v in late.items())
    for name, digest in files.items():
        assert hashlib.sha256((c.tmp / "m0" / name).read_bytes()).hexdigest() == digest
    r = c.run("cluster", "show", c.addrs[0])
    assert r.returncode == 0 and "settled" in r.stdout and dead not in r.stdout, r.stdout
    new.stop()


def stats_size(addrs, key):
    """The size of an object, asked of a node that holds it (get ?KEY is local)."""
    for a in addrs:
        host, port = a.rsplit(":", 1)
        try:
            v = Client((host, int(port)), timeout=5).get("?" + key)
        except OSError:
            continue
        if v:
            return int(v.split()[3])
    return 0


def test_a_crash_in_the_middle_of_a_move(cluster, caskfs_bin, tmp_path):
    c = cluster
    c.write(count=OBJECTS, sizes=(1000, 3000))
    time.sleep(1.5)
    before = copies(c.addrs)
    port = free_port()
    # slow on purpose (1 MiB/s), so the move is under way when it is killed
    args = ["--node-id", "6", "--sync-interval", "1", "--rebalance-rate", "1"]
    new = Node(caskfs_bin, tmp_path / "d5", port, [c.addrs[0]], args)
    new.start()
    assert eventually(lambda: stats(new.addr)["caskfs_map_epoch"] >= 1, timeout=10)
    r = c.run("cluster", "add", "--no-wait", c.addrs[1], new.addr)
    assert r.returncode == 0, r.stdout + r.stderr
    assert eventually(lambda: stats(new.addr)["caskfs_rebalance_objects_in"] > 50, timeout=20)
    assert not stats(new.addr)["caskfs_map_settled"]
    new.kill9()
    # meanwhile the old owners keep their copies and every object reads
    for k in list(before)[:200]:
        host, port_ = c.addrs[3].rsplit(":", 1)
        assert Client((host, int(port_)), timeout=10).get(k) is not None, k
    new = Node(caskfs_bin, tmp_path / "d5", port, [c.addrs[0]],
               ["--node-id", "6", "--sync-interval", "1"])
    new.start()
    addrs6 = c.addrs + [new.addr]
    settled = eventually(lambda: all(stats(a)["caskfs_map_settled"] and
                                     stats(a)["caskfs_rebalance_clean_epoch"] >=
                                     stats(a)["caskfs_map_epoch"] for a in addrs6), timeout=60)
    assert settled, [stats(a)["caskfs_map_epoch"] for a in addrs6]
    assert not on_exactly(c, addrs6, keys=before)
    st = stats(new.addr)
    assert st["caskfs_nodes"] == 6
    # it resumed: after the restart it took only what it did not have yet
    assert 0 < st["caskfs_rebalance_objects_in"] < st["curr_items"], st
    # nothing lost: fsck is clean on every node
    new.stop()
    c.stop()
    for i in (0, 1):
        c.mounts[i].stop()
    for d in [tmp_path / f"d{i}" for i in range(6)]:
        r = c.run("fsck", d)
        assert r.returncode == 0, r.stdout + r.stderr


def test_a_member_gone_before_the_first_map(nodes, run):
    """Nodes whose --peers name a node that never answers cannot agree on a
    first map; removing that node makes the others' list the map."""
    three = nodes(3, start=False)
    ghost = f"127.0.0.1:{free_port()}"
    for n in three:
        n.peers.append(ghost)
        n.extra += ["--sync-interval", "1"]
        n.start()
    time.sleep(1.5)
    assert all(stats(n.addr)["caskfs_map_epoch"] == 0 for n in three)
    assert all(stats(n.addr)["caskfs_nodes"] == 4 for n in three)
    r = run("cluster", "remove", "--timeout", "30", three[0].addr, ghost)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
    assert b"provisional" in r.stdout
    assert eventually(lambda: all(stats(n.addr)["caskfs_nodes"] == 3 and
                                  stats(n.addr)["caskfs_map_settled"] for n in three))
    cl = Client(("127.0.0.1", three[1].port), timeout=10, default_noreply=False)
    assert cl.set("k", b"v") is True
    assert sum("k" in local_records(n.addr) for n in three) == 3


def test_objects_held_elsewhere_go_to_their_owners(nodes, run):
    """What an upgrade from per-key placement leaves: objects on nodes that
    do not own their bucket. The rounds and the rebalancer put each on its
    three owners and nowhere else."""
    five = nodes(5, extra=["--sync-interval", "1"])
    addrs = [n.addr for n in five]
    assert eventually(lambda: all(stats(a)["caskfs_map_epoch"] >= 1 for a in addrs))
    rng = random.Random(5)
    keys = [f"old/{i}" for i in range(500)]
    for k in keys:  # three copies each, on three nodes drawn at random
        for n in rng.sample(five, 3):
            s = socket.create_connection(("127.0.0.1", n.port))
            s.sendall(b"xset %s 1000 7 200\r\n%s\r\n" % (k.encode(), b"v" * 200))
            # (a background round may have copied it there already)
            assert s.recv(100) in (b"STORED\r\n", b"NOT_STORED\r\n")
            s.close()

    time.sleep(5.5)  # a hand-off pass (every 5 s) after they were written

    def placed():
        where = copies(addrs)
        return all(len(where.get(k, ())) == 3 for k in keys) and \
            all(stats(a)["caskfs_rebalance_to_drop"] == 0 for a in addrs) and \
            all(run("sync", "--dry-run", "--data", addrs[i], addrs[j]).returncode == 0
                for i in range(5) for j in range(i + 1, 5))
    assert eventually(placed, timeout=40, step=1)
    assert sum(stats(a)["caskfs_rebalance_dropped"] for a in addrs) > 0
