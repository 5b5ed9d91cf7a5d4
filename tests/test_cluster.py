"""Several nodes on 127.0.0.1: placement on exactly N nodes, quorum writes,
read repair, hinted handoff, and a mount that is itself a node and keeps
working while peers die. Reference: docs/PROTOCOL.md."""
import errno
import os
import random
import socket
import time

import pytest
from pymemcache.client.base import Client

from conftest import Node, free_port


def mc(node):
    return Client(("127.0.0.1", node.port), connect_timeout=5, timeout=10,
                  default_noreply=False, tls_context=node.tls)


def holds(node, key):
    """Whether node's own store has a live copy of key (get ?KEY is local)."""
    val = mc(node).get("?" + key)
    return val is not None and val.endswith(b" live")


def local_keys(node, prefix=""):
    s = node.connect()
    s.sendall(b"xls %s\r\n" % prefix.encode() if prefix else b"xls\r\n")
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


def test_every_object_on_exactly_n_nodes(nodes, run):
    four = nodes(4)
    assert "N=3 W=2 R=1 over 4 nodes" in four[0].log()
    rng = random.Random(3)
    keys = []
    for i in range(200):
        key = f"obj/{i}"
        val = rng.randbytes(rng.randrange(0, 70000))
        assert mc(four[i % 4]).set(key, val) is True
        keys.append((key, val))
    for key, val in keys:
        assert sum(holds(n, key) for n in four) == 3, key
        assert mc(four[rng.randrange(4)]).get(key) == val
    # the same, the way an operator checks it: caskfs kv HOST:PORT stat KEY
    for key, _ in keys[:10]:
        present = [run("kv", *n.client_args, n.addr, "stat", key).returncode for n in four]
        assert sorted(present) == [0, 0, 0, 1], (key, present)
    # a delete through any node reaches every replica
    assert mc(four[1]).delete(keys[0][0]) is True
    assert all(not holds(n, keys[0][0]) for n in four)
    assert all(mc(n).get(keys[0][0]) is None for n in four)


def test_quorum_clamped_to_the_cluster(nodes):
    two = nodes(2)
    assert "N=2 W=2 R=1 over 2 nodes" in two[0].log()
    assert mc(two[0]).set("k", b"v") is True
    assert holds(two[0], "k") and holds(two[1], "k")


def test_read_repair(nodes):
    a, b, c = nodes(3)
    # put a version on a and c only, behind b's back (the stamped extension is
    # never forwarded), then read through b: b answers and repairs itself
    for n in (a, c):
        s = n.connect()
        s.sendall(b"xset rr 1000 9 4\r\ndata\r\n")
        assert s.recv(100) == b"STORED\r\n"
        s.close()
    assert not holds(b, "rr")
    assert mc(b).get("rr") == b"data"
    assert holds(b, "rr")
    assert mc(b).stats()[b"caskfs_read_repairs"] == 1


def test_hinted_handoff_survives_a_restart(nodes):
    a, b, c = nodes(3)
    c.kill9()
    for i in range(50):
        assert mc(a).set(f"h{i}", b"x" * i) is True
    assert mc(a).stats()[b"caskfs_hints_pending"] == 50
    a.stop()  # the hints are on a's disk, not in its memory
    c.start()
    a.start()
    deadline = time.time() + 10
    while time.time() < deadline and not all(holds(c, f"h{i}") for i in range(50)):
        time.sleep(0.2)
    assert all(holds(c, f"h{i}") for i in range(50))
    assert mc(a).stats()[b"caskfs_hints_pending"] == 0
    assert "handed" in a.log()


@pytest.fixture
def cluster_mount(caskfs_bin, tmp_path, mount):
    """A mount that is a node, with two `caskfs serve` peers."""
    ports = [free_port() for _ in range(3)]
    addrs = [f"127.0.0.1:{p}" for p in ports]
    peers = []
    for i in (1, 2):
        others = [a for a in addrs if a != addrs[i]]
        peers.append(Node(caskfs_bin, tmp_path / f"peer{i}", ports[i], others))
    for p in peers:
        p.start()
    m = mount(extra=["--listen", addrs[0], "--peers", f"{addrs[1]},{addrs[2]}"])
    m.node = Node(caskfs_bin, m.data, ports[0])
    yield m, peers
    for p in peers:
        p.stop()


def write_synced(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def drop_caches():
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")


def test_mount_keeps_working_while_peers_die(cluster_mount):
    m, (p1, p2) = cluster_mount
    log = open(str(m.data) + ".log").read()
    assert "N=3 W=2 R=1 over 3 nodes" in log
    rng = random.Random(11)
    files = {}
    for i in range(8):
        files[f"photo{i}.jpg"] = rng.randbytes(rng.randrange(100_000, 2_500_000))
    for name, data in files.items():
        write_synced(m.path / name, data)
    chunks = local_keys(m.node, "c/")
    assert len(chunks) >= 8
    assert local_keys(p1, "c/") == chunks and local_keys(p2, "c/") == chunks

    # one peer dies: writes and reads go on (W=2: this node and the other)
    p1.kill9()
    for i in range(8, 12):
        files[f"photo{i}.jpg"] = rng.randbytes(1_500_000)
        write_synced(m.path / f"photo{i}.jpg", files[f"photo{i}.jpg"])
    drop_caches()
    for name, data in files.items():
        assert (m.path / name).read_bytes() == data

    # a second dies: a write fails with EIO within 2 s, naming the replicas
    p2.kill9()
    t0 = time.time()
    with pytest.raises(OSError) as e:
        write_synced(m.path / "lost.jpg", rng.randbytes(2_000_000))
    assert e.value.errno == errno.EIO
    assert time.time() - t0 < 2
    log = open(str(m.data) + ".log").read()
    assert f"missing: {p1.addr}, {p2.addr}" in log or f"missing: {p2.addr}, {p1.addr}" in log
    # reads of what exists still work (every chunk has a copy here)
    drop_caches()
    for name, data in files.items():
        assert (m.path / name).read_bytes() == data

    # the peers come back: hinted handoff restores three copies within 10 s
    p1.start()
    p2.start()
    mine = local_keys(m.node, "c/")
    deadline = time.time() + 10
    while time.time() < deadline:
        if local_keys(p1, "c/") >= mine and local_keys(p2, "c/") >= mine:
            break
        time.sleep(0.25)
    assert local_keys(p1, "c/") >= mine
    assert local_keys(p2, "c/") >= mine
    # and the mount writes again
    write_synced(m.path / "after.jpg", b"back" * 1000)
    assert (m.path / "after.jpg").read_bytes() == b"back" * 1000
