"""The scrubber: a running node re-reads its sealed segments at a bounded
rate, finds a flipped byte within one pass, repairs the record from a peer,
counts it (caskfs scrub, caskfs status, /metrics) and resumes after a
restart. docs/OPERATIONS.md ("Scrubbing")."""
import os
import socket
import subprocess
import time
import urllib.request

RATE = 2 << 20


def xget(node, key):
    s = socket.create_connection(("127.0.0.1", node.port))
    s.sendall(b"xget " + key.encode() + b"\r\n")
    data = b""
    while not data.endswith(b"END\r\n"):
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, rest = data.partition(b"\r\n")  # XVALUE KEY STAMP NODE BYTES HASH [T]
    return rest[:int(head.split()[4])] if head.startswith(b"XVALUE") else None


def scrub_stats(node):
    s = socket.create_connection(("127.0.0.1", node.port))
    s.sendall(b"stats scrub\r\n")
    data = b""
    while not data.endswith(b"END\r\n"):
        data += s.recv(65536)
    s.close()
    return {l.split()[1][len("caskfs_scrub_"):]: int(l.split()[2])
            for l in data.decode().splitlines() if l.startswith("STAT ")}


def test_flipped_byte_found_repaired_counted_under_the_rate(nodes, caskfs_bin, run):
    from pymemcache.client.base import Client
    three = nodes(3, extra=["--segment-size", "262144", "--scrub-rate", str(RATE)])
    a, b, c = three
    cl = Client(("127.0.0.1", a.port), default_noreply=False)
    values = {f"obj{i}": os.urandom(20_000) for i in range(300)}
    for k, v in values.items():
        assert cl.set(k, v) is True
    segs = sorted(p for p in os.listdir(c.data / "log") if p.endswith(".hint"))
    assert len(segs) >= 10
    victim = c.data / "log" / segs[len(segs) // 2].replace(".hint", ".cask")
    with open(victim, "r+b") as f:  # one byte, deep inside a record's value
        f.seek(100_000)
        byte = f.read(1)
        f.seek(100_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    before = scrub_stats(c)
    assert before["enabled"] == 1 and before["damaged"] == 0
    t0 = time.monotonic()
    r = run("scrub", c.addr, "--now", "--wait", timeout=120)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    after = scrub_stats(c)
    assert after["passes"] == before["passes"] + 1
    assert after["damaged"] == 1 and after["repaired"] == 1 and after["unrepaired"] == 0
    assert "damaged 1: 1 repaired" in r.stdout.decode()
    # the bandwidth stays under the limit: a pass of this many bytes cannot be quicker
    scrubbed = after["bytes"] - before["bytes"]
    assert scrubbed > 5_000_000
    measured = scrubbed / elapsed
    print(f"scrub: {scrubbed} bytes in {elapsed:.2f} s = {measured / 2**20:.2f} MiB/s "
          f"(limit {RATE / 2**20:.1f})")
    assert measured <= RATE * 1.05
    # every local copy on c is good again (xget reads c's own store, no peer)
    for k, v in values.items():
        assert xget(c, k) == v, k
    st = run("status", c.addr).stdout.decode()
    assert "1 passes done" in st and "damaged 1 (1 repaired" in st, st
    body = urllib.request.urlopen(f"http://{c.addr}/metrics", timeout=5).read().decode()
    assert "caskfs_scrub_repaired_total 1" in body


def test_scrub_resumes_after_a_restart(nodes, caskfs_bin, run):
    from pymemcache.client.base import Client
    (n,) = nodes(1, extra=["--segment-size", "65536", "--scrub-rate", "300K"])
    cl = Client(("127.0.0.1", n.port), default_noreply=False)
    for i in range(300):
        assert cl.set(f"k{i}", os.urandom(10_000)) is True
    run("scrub", n.addr, "--now")
    deadline = time.time() + 10
    while scrub_stats(n)["pass_bytes"] < 400_000 and time.time() < deadline:
        time.sleep(0.1)
    n.stop()  # the position is saved as it stops
    state = run("scrub", str(n.data)).stdout.decode()
    assert "pass 1 under way" in state, state
    n.start()
    st = scrub_stats(n)
    assert st["running"] == 1 and st["pass_bytes"] >= 400_000  # resumed, not restarted
    # a DATA_DIR at rest can be scrubbed in place: all good
    n.stop()
    r = run("scrub", "--now", str(n.data))
    assert r.returncode == 0 and "damaged 0" in r.stdout.decode(), r.stdout
