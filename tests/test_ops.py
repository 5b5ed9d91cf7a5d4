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


def test_config_file_syslog_and_levels(caskfs_bin, tmp_path):
    """DATA_DIR/node.conf supplies options (the command line wins); --syslog
    sends leveled messages to syslog; --log-level drops the lower ones."""
    import os
    import socket
    import subprocess
    import time
    from conftest import free_port, wait_port
    data = tmp_path / "d"
    data.mkdir()
    port, dead = free_port(), free_port()
    (data / "node.conf").write_text(
        f"# settings\nlisten = 127.0.0.1:{port}\npeers = 127.0.0.1:{dead}\nnode-id = 12\n")
    # the test listens where syslog(3) writes; a syslog daemon's socket, if
    # there is one, is moved aside for the test and put back after
    saved = "/dev/log.caskfs-test"
    if os.path.lexists("/dev/log"):
        os.rename("/dev/log", saved)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("/dev/log")
    proc = None
    try:
        proc = subprocess.Popen([caskfs_bin, "serve", "--syslog", "--node-id", "13", str(data)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_port(port, proc)
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"set k 0 0 1\r\nx\r\n")  # W=2 of 2 nodes, the peer is dead
        assert c.recv(100).startswith(b"SERVER_ERROR")
        c.close()
        sock.settimeout(5)
        got = []
        deadline = time.time() + 5
        while time.time() < deadline and not any(b"is down" in g for g in got):
            try:
                got.append(sock.recv(4096))
            except socket.timeout:
                break
        text = b"\n".join(got).decode(errors="replace")
        assert "caskfs-serve" in text and "node 13" in text  # the command line won
        down = next(g for g in got if b"is down" in g).decode()
        assert down.startswith("<28>")  # facility daemon (3), level warning (4)
        failed = next(g for g in got if b"replicas acknowledged" in g or b"refused" in g)
        assert failed.decode().startswith(("<27>", "<28>"))
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=20)
        sock.close()
        os.unlink("/dev/log")
        if os.path.lexists(saved):
            os.rename(saved, "/dev/log")
    # --log-level error: information and warnings are dropped, errors tagged
    r = subprocess.run([caskfs_bin, "serve", "--log-level", "nonsense", str(data)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "unknown log level" in r.stderr
    (data / "node.conf").write_text("listen = nonsense-without-port\n")
    r = subprocess.run([caskfs_bin, "serve", str(data)], capture_output=True, text=True)
    assert r.returncode == 2
    (data / "node.conf").write_text("no-such-setting = 1\n")
    r = subprocess.run([caskfs_bin, "serve", str(data)], capture_output=True, text=True)
    assert r.returncode == 2 and "node.conf:1: unknown setting 'no-such-setting'" in r.stderr
