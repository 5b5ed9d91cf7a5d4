"""scripts/cluster-up, cluster-down and sync-replicas, run as a user would."""
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import ROOT


def free_base():
    """A base port whose next three ports are free on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base > 65000:
            continue
        socks = []
        try:
            for p in range(base + 1, base + 4):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.fail("no four free ports in a row")


@pytest.fixture
def cluster_dir(tmp_path):
    d = tmp_path / "cluster"
    yield d
    subprocess.run([str(ROOT / "scripts" / "cluster-down"), str(d)], capture_output=True,
                   timeout=60)
    for i in (1, 2, 3):
        if os.path.ismount(d / f"mnt{i}"):
            subprocess.run(["fusermount3", "-uz", str(d / f"mnt{i}")], capture_output=True)


def node_pid(d, i):
    return int(open(d / f"node{i}" / "LOCK").read().split()[0])


def test_cluster_scripts(cluster_dir):
    base = free_base()
    r = subprocess.run([str(ROOT / "scripts" / "cluster-up"), str(cluster_dir), str(base)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "three mounts" in r.stdout
    for i in (1, 2, 3):
        assert os.path.ismount(cluster_dir / f"mnt{i}")
    (cluster_dir / "mnt1" / "album").mkdir()
    (cluster_dir / "mnt1" / "album" / "a.jpg").write_bytes(os.urandom(200_000))
    want = (cluster_dir / "mnt1" / "album" / "a.jpg").read_bytes()
    got = None
    deadline = time.time() + 5
    while time.time() < deadline and got != want:
        try:
            got = (cluster_dir / "mnt3" / "album" / "a.jpg").read_bytes()
        except OSError:
            pass
        time.sleep(0.05)
    assert got == want
    r = subprocess.run([str(ROOT / "scripts" / "sync-replicas"), str(cluster_dir)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("equal") == 6  # data and meta for three pairs

    # a node that is gone: the pairs with it fail, and the script says so
    os.kill(node_pid(cluster_dir, 3), signal.SIGKILL)
    time.sleep(0.2)
    subprocess.run(["fusermount3", "-uz", str(cluster_dir / "mnt3")], capture_output=True)
    r = subprocess.run([str(ROOT / "scripts" / "sync-replicas"), str(cluster_dir)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert f"127.0.0.1:{base + 3}" in r.stderr and "could not be synced" in r.stderr

    r = subprocess.run([str(ROOT / "scripts" / "cluster-down"), str(cluster_dir)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    for i in (1, 2):
        assert not os.path.ismount(cluster_dir / f"mnt{i}")


def test_sync_replicas_usage():
    r = subprocess.run([str(ROOT / "scripts" / "sync-replicas")], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "usage" in r.stderr
