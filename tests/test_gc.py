"""caskfs gc: chunks no file references are removed and their space
reclaimed, live files untouched, also while a writer is running."""
import hashlib
import os
import random
import threading
import time


def digest(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


def disk_bytes(run, target):
    import json
    r = run("status", "--json", target)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["stats"]["caskfs_disk_bytes"]


def test_gc_reclaims_deleted_half_while_writing(mount, run):
    m = mount()
    rng = random.Random(21)
    (m.path / "photos").mkdir()
    files = {}
    for i in range(40):
        p = m.path / "photos" / f"img{i:03d}.jpg"
        p.write_bytes(rng.randbytes(rng.randrange(20_000, 2_000_000)))
        files[p] = digest(p)
    time.sleep(2.5)  # older than the grace period below
    deleted = 0
    for i, p in enumerate(sorted(files)):
        if i % 2 == 0:
            deleted += p.stat().st_size
            p.unlink()
            del files[p]
    # a dry run finds the garbage and removes nothing
    before = disk_bytes(run, m.data)
    r = run("gc", "--dry-run", "--grace", "2", m.data)
    assert r.returncode == 0, r.stderr
    assert b"would be removed, 0 removed" in r.stdout
    assert disk_bytes(run, m.data) == before

    stop = threading.Event()
    written = {}

    def writer():
        i = 0
        while not stop.is_set():
            p = m.path / f"new{i}.bin"
            data = os.urandom(300_000)
            p.write_bytes(data)
            written[p] = hashlib.sha256(data).hexdigest()
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        r = run("gc", "--grace", "2", m.data, timeout=300)
    finally:
        stop.set()
        t.join()
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    reclaimed = int(out.split(" bytes reclaimed")[0].split()[-1])
    assert reclaimed >= 0.9 * deleted, (reclaimed, deleted, out)
    # the disk agrees, counting what the writer added meanwhile
    added = sum(p.stat().st_size for p in written)
    assert before + added - disk_bytes(run, m.data) >= 0.9 * deleted
    for p, d in list(files.items()) + list(written.items()):
        assert digest(p) == d, p
    # and after a remount too
    m.stop()
    # nothing the namespace names is missing
    r = run("fsck", m.data)
    assert r.returncode == 0, r.stdout + r.stderr
    m = mount()
    for p, d in files.items():
        assert digest(p) == d


def test_gc_of_a_data_dir_at_rest_and_of_a_node_without_namespace(mount, nodes, run):
    m = mount()
    (m.path / "a").write_bytes(os.urandom(500_000))
    (m.path / "b").write_bytes(os.urandom(500_000))
    time.sleep(1.2)
    os.unlink(m.path / "b")
    keep = digest(m.path / "a")
    m.stop()
    r = run("gc", "--grace", "1", m.data)
    assert r.returncode == 0, r.stderr
    assert b"1 unreferenced (500000 bytes here), 1 removed" in r.stdout
    m = mount()
    assert digest(m.path / "a") == keep
    (n,) = nodes(1)
    r = run("gc", n.addr)
    assert r.returncode == 3 and b"without a namespace" in r.stderr
    r = run("gc", n.data)
    assert r.returncode == 3
