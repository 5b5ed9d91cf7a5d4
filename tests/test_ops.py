"""Operating a node: caskfs status (text and JSON, of a node and of a DATA_DIR)
and the Prometheus metrics on the node's port."""
import json
import urllib.request

from pymemcache.client.base import Client


def test_status_of_a_node_and_of_its_data_dir(nodes, run):
    a, b = nodes(2, extra=["--write-quorum", "1"])
    c = Client(("127.0.0.1", a.port), default_noreply=False)
    for i in range(20):
        c.set(f"k{i}", b"x" * 1000)
    c.delete("k0")
    r = run("status", a.addr)
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    assert "objects      19 live, 1 tombstones" in text
    assert "N=2 W=1 R=1 over 2 nodes" in text
    assert f"{b.addr} up" in text
    assert "000001  active" in text
    r = run("status", "--json", b.addr)
    st = json.loads(r.stdout)
    assert st["stats"]["curr_items"] == 19 and st["stats"]["caskfs_tombstones"] == 1
    assert st["segments"][0]["id"] == 1 and not st["segments"][0]["sealed"]
    assert st["peers"] == [{"addr": a.addr, "up": True, "hints": 0}]
    root = st["stats"]["caskfs_tree_root"]
    # the DATA_DIR of a running node: asked through its control socket
    r = run("status", "--json", b.data)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["stats"]["caskfs_tree_root"] == root
    # and once the node stops, read from the files
    b.stop()
    r = run("status", "--json", b.data)
    assert r.returncode == 0
    st = json.loads(r.stdout)
    assert st["stats"]["curr_items"] == 19 and st["stats"]["caskfs_tree_root"] == root
    # the peer that is gone shows as down, with the hints kept for it
    c.set("late", b"y")
    r = run("status", a.addr)
    assert f"{b.addr} DOWN, 1 hints waiting" in r.stdout.decode()
    assert run("status", "nonsense").returncode == 2


def test_metrics_endpoint(nodes):
    (n,) = nodes(1)
    Client(("127.0.0.1", n.port), default_noreply=False).set("m", b"v")
    body = urllib.request.urlopen(f"http://{n.addr}/metrics", timeout=10).read().decode()
    lines = dict(line.rsplit(" ", 1) for line in body.splitlines() if not line.startswith("#"))
    assert lines["caskfs_curr_items"] == "1"
    assert int(lines["caskfs_cmd_set_total"]) == 1
    assert "# TYPE caskfs_cmd_set_total counter" in body
    assert "# TYPE caskfs_disk_bytes gauge" in body
    try:
        urllib.request.urlopen(f"http://{n.addr}/other", timeout=10)
        assert False, "only /metrics is served"
    except urllib.error.HTTPError as e:
        assert e.code == 404


def test_mount_helper_for_fstab(caskfs_bin, tmp_path):
    """scripts/mount.caskfs: what mount(8) runs for `-t caskfs` and fstab lines."""
    import os
    import subprocess
    from conftest import ROOT
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ, CASKFS=caskfs_bin)
    helper = str(ROOT / "scripts" / "mount.caskfs")
    try:
        r = subprocess.run([helper, str(tmp_path / "d"), str(mnt), "-o",
                            f"defaults,_netdev,node-id=7,log={tmp_path}/log"],
                           env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert os.path.ismount(mnt)
        (mnt / "f").write_text("via fstab")
        assert "node 7" in open(tmp_path / "log").read()
        subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
        r = subprocess.run([helper, str(tmp_path / "d"), str(mnt), "-o", "ro"], env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert (mnt / "f").read_text() == "via fstab"
        try:
            (mnt / "g").write_text("x")
            assert False, "a read-only mount took a write"
        except OSError as e:
            assert e.errno == 30  # EROFS
    finally:
        if os.path.ismount(mnt):
            subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
        if os.path.ismount(mnt):
            subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)
