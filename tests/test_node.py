"""One node (`caskfs serve`) against stock memcache clients, the protocol
extensions, bad input, and authentication. Reference: docs/PROTOCOL.md."""
import os
import random
import shutil
import socket
import subprocess
import threading
import time

import pytest
from pymemcache.client.base import Client

from conftest import free_port, wait_port


def raw(port, payload, wait=0.3, timeout=5, until=None):
    """Sends payload on a new connection; returns everything read until quiet
    for wait seconds (or, with until, as soon as the data ends with it)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(payload)
    data = b""
    s.settimeout(wait)
    try:
        while until is None or not data.endswith(until):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    s.close()
    return data


def client(node, **kw):
    return Client(("127.0.0.1", node.port), connect_timeout=5, timeout=10, **kw)


def test_pymemcache_round_trips(nodes):
    (n,) = nodes(1)
    c = client(n, default_noreply=False)
    rng = random.Random(5)
    sizes = [0, 1, 2, 1023, 1024, 1 << 20] + [rng.choice(
        [rng.randrange(0, 100), rng.randrange(100, 16384), rng.randrange(16384, 1 << 20)])
        for _ in range(994)]
    values = {}
    for i, size in enumerate(sizes):
        key = f"k{i:04d}-{size}"
        # random bytes, so every byte value (CR, LF, NUL) crosses the wire
        values[key] = rng.randbytes(size)
        assert c.set(key, values[key]) is True
    assert len(values) == 1000
    for key, val in values.items():
        assert c.get(key) == val, key
    keys = list(values)
    for start in range(0, 1000, 100):
        got = c.get_many(keys[start:start + 100] + ["absent-key"])
        assert got == {k: values[k] for k in keys[start:start + 100]}
    for key in keys[::2]:
        assert c.delete(key) is True
    assert c.delete(keys[0]) is False
    for i, key in enumerate(keys):
        assert c.get(key) == (None if i % 2 == 0 else values[key])
    assert c.add(keys[1], b"x") is False
    assert c.add(keys[0], b"new") is True and c.get(keys[0]) == b"new"
    assert c.replace("never-set", b"x") is False
    assert c.replace(keys[0], b"newer") is True and c.get(keys[0]) == b"newer"
    val, cas = c.gets(keys[0])
    assert val == b"newer" and int(cas) > 0
    stats = c.stats()
    assert stats[b"curr_items"] == 501
    assert c.version().startswith(b"1.6.0-caskfs")


def test_pipelining_and_many_connections(nodes):
    (n,) = nodes(1)
    reqs = b"".join(b"set p%d 0 0 3\r\nv%02d\r\n" % (i, i) for i in range(100))
    reqs += b"get " + b" ".join(b"p%d" % i for i in range(100)) + b"\r\n"
    out = raw(n.port, reqs, wait=1)
    assert out.count(b"STORED\r\n") == 100
    for i in range(100):
        assert b"VALUE p%d 0 3\r\nv%02d\r\n" % (i, i) in out
    assert out.endswith(b"END\r\n")
    conns = [socket.create_connection(("127.0.0.1", n.port)) for _ in range(300)]
    for i, s in enumerate(conns):
        s.sendall(b"get p%d\r\n" % (i % 100))
    for i, s in enumerate(conns):
        s.settimeout(5)
        data = b""
        while not data.endswith(b"END\r\n"):
            data += s.recv(4096)
        assert data == b"VALUE p%d 0 3\r\nv%02d\r\nEND\r\n" % (i % 100, i % 100)
        s.close()


def test_libmemcached_tools(nodes, tmp_path):
    for tool in ("memccp", "memccat", "memcrm", "memcstat", "memcslap"):
        assert shutil.which(tool), f"{tool} missing: run scripts/install-deps.sh"
    (n,) = nodes(1)
    servers = f"--servers=127.0.0.1:{n.port}"
    files = []
    for i, size in enumerate([0, 1, 5000, 300000, 1 << 20]):
        f = tmp_path / f"file{i}.bin"
        f.write_bytes(os.urandom(size))
        files.append(f)
    subprocess.run(["memccp", servers, *map(str, files)], check=True, timeout=60)
    for f in files:
        r = subprocess.run(["memccat", servers, f.name], capture_output=True, timeout=60)
        assert r.returncode == 0
        # memccat ends each value with a newline of its own
        assert r.stdout == f.read_bytes() + b"\n"
    subprocess.run(["memcrm", servers, files[2].name], check=True, timeout=60)
    r = subprocess.run(["memccat", servers, files[2].name], capture_output=True, timeout=60)
    assert r.returncode != 0
    r = subprocess.run(["memcstat", servers], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "curr_items: 4" in r.stdout
    r = subprocess.run(["memcslap", servers, "--concurrency=4", "--execute-number=500"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert client(n).get(files[3].name) == files[3].read_bytes()


def test_extensions(nodes):
    (n,) = nodes(1)
    out = raw(n.port, b"xset k 100 7 5\r\nhello\r\nxset k 99 9 3\r\nold\r\n"
              b"xset k 100 7 5\r\nhello\r\nxget k nothere\r\nget ?k\r\nget ?nothere\r\n")
    assert out.startswith(b"STORED\r\nNOT_STORED\r\nNOT_STORED\r\n")
    assert b"XVALUE k 100 7 5 " in out and b"\r\nhello\r\nEND\r\n" in out
    assert b"VALUE ?k 0 " in out and b"100 7 " in out and b" 5 0 0 live\r\n" in out
    assert out.endswith(b"END\r\nEND\r\n")
    # a tombstone that wins; a plain get then misses; xget still shows it
    out = raw(n.port, b"xset k 101 7 0 T\r\n\r\nget k\r\nxget k\r\nxls\r\nget @\r\n")
    assert out.startswith(b"STORED\r\nEND\r\nXVALUE k 101 7 0 0000000000000000 T\r\n\r\nEND\r\n")
    assert b"k 101 7 0000000000000000 T\r\nEND\r\n" in out
    assert b"VALUE @ 0 " in out and b"self " in out
    # the tree: the root lists 16 children, a bucket lists its keys
    c = client(n, default_noreply=False)
    c.set("t1", b"a")
    root = c.get("@").decode().splitlines()
    assert len(root) == 17 and root[0].split()[2] == "2"
    child = next(line.split()[0] for line in root[1:] if line.split()[2] != "0")
    path = child
    while len(path) < 4:
        lines = c.get("@" + path).decode().splitlines()
        path += next(line.split()[0] for line in lines[1:] if line.split()[2] != "0")
    bucket = c.get("@" + path).decode()
    assert any(line.split()[0] in ("t1", "k") for line in bucket.splitlines())
    assert b"CLIENT_ERROR bad tree path" in raw(n.port, b"get @zz\r\n")


def test_bad_input(nodes):
    (n,) = nodes(1)
    good = client(n, default_noreply=False)
    good.set("steady", b"v" * 1000)
    errors = []
    stop = threading.Event()

    def well_behaved():
        c = client(n, default_noreply=False)
        i = 0
        while not stop.is_set():
            try:
                val = os.urandom(i % 5000)
                assert c.set(f"wb{i % 50}", val) is True
                assert c.get(f"wb{i % 50}") == val
                assert c.get("steady") == b"v" * 1000
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                errors.append(repr(e))
                return
            i += 1

    t = threading.Thread(target=well_behaved)
    t.start()
    rss_before = n.rss_kib()
    rng = random.Random(9)
    malformed = [
        b"bogus command\r\n", b"\r\n", b"get\r\n", b"set k 0 0\r\n", b"set k x 0 5\r\nhello\r\n",
        b"set k 0 0 -1\r\n", b"set k 0 0 5 extra junk\r\nhello\r\n",
        b"set k 0 0 5\r\nhelloXX", b"delete\r\n", b"delete " + b"k" * 251 + b"\r\n",
        b"get " + b"k" * 251 + b"\r\n", b"xset k 1 2\r\n", b"xset k 1 2 3 T\r\nabc\r\n",
        b"incr k 1\r\n", b"cas k 0 0 1 1\r\nx\r\n", b"\x00\x01\x02\xff\xfe\r\n",
        b"get @0123456\r\n", b"verbosity\r\n", b"auth zz\r\n",
    ]
    sent = 0
    for conn in range(100):
        # ten bad requests per connection; the over-limit value last, since
        # the bytes after it are swallowed as its value
        parts = []
        for i in range(9):
            if i % 3 == 2:
                # (not starting with 0x80: that is the binary protocol, checked below)
                parts.append(b"j" + rng.randbytes(rng.randrange(1, 3000)) + b"\r\n")
            else:
                parts.append(rng.choice(malformed))
        parts.append(b"set big 0 0 %d\r\n" % (64 << 20) + b"x" * 1000)
        # (until the last reply: a fixed quiet time is too short on a busy machine)
        out = raw(n.port, b"".join(parts), wait=2, until=b"object too large for cache\r\n")
        sent += len(parts)
        assert b"SERVER_ERROR object too large" in out
        assert b"ERROR" in out.replace(b"SERVER_ERROR object too large", b"")
    assert sent == 1000
    # memcache's binary protocol: an error, then the connection is closed
    out = raw(n.port, b"\x80\x01\x00\x03" + bytes(20) + b"get version\r\n", wait=1)
    assert out == b"CLIENT_ERROR the binary protocol is not supported\r\n"
    # a line that never ends: error, then the connection is closed
    out = raw(n.port, b"get " + b"k" * 70000, wait=1)
    assert b"CLIENT_ERROR line too long" in out
    # a client that disconnects in the middle of a value
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", n.port))
        s.sendall(b"set half 0 0 1000000\r\n" + b"x" * 300000)
        s.close()
    # 5000 connections opened and dropped
    for i in range(5000):
        s = socket.create_connection(("127.0.0.1", n.port))
        if i % 2:
            s.sendall(b"get st")
        s.close()
    stop.set()
    t.join(timeout=30)
    assert not errors, errors
    assert good.get("half") is None
    assert good.get("steady") == b"v" * 1000
    stats = good.stats()
    assert stats[b"protocol_errors"] > 1000
    # memory stays bounded: no buffer of a dead connection is kept
    time.sleep(0.5)
    assert n.rss_kib() - rss_before < 200 * 1024, (rss_before, n.rss_kib())
    assert stats[b"curr_connections"] < 20


def test_listen_outside_loopback_needs_secret(caskfs_bin, tmp_path):
    r = subprocess.run([caskfs_bin, "serve", str(tmp_path / "d"), "--listen",
                        f"0.0.0.0:{free_port()}"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "without --secret-file" in r.stderr


def test_authentication(nodes, tmp_path, run):
    secret = tmp_path / "secret"
    secret.write_text("correct horse battery staple\n")
    secret.chmod(0o600)
    (n,) = nodes(1, extra=["--secret-file", str(secret)])
    out = raw(n.port, b"get x\r\nset x 0 0 1\r\na\r\nversion\r\nstats\r\n")
    assert out == (b"CLIENT_ERROR authenticate first\r\n" * 2 + b"VERSION 1.6.0-caskfs-0.2\r\n"
                   + b"CLIENT_ERROR authenticate first\r\n")
    (tmp_path / "v").write_bytes(b"secret value")
    r = run("kv", "--secret-file", secret, n.addr, "put", "sk", tmp_path / "v")
    assert r.returncode == 0, r.stderr
    r = run("kv", "--secret-file", secret, n.addr, "get", "sk")
    assert r.returncode == 0 and r.stdout == b"secret value"
    wrong = tmp_path / "wrong"
    wrong.write_text("not the secret at all, no\n")
    wrong.chmod(0o600)
    r = run("kv", "--secret-file", wrong, n.addr, "get", "sk")
    assert r.returncode == 3 and b"authentication failed" in r.stderr
    r = run("kv", n.addr, "get", "sk")
    assert r.returncode != 0
    # a forged proof closes the connection
    out = raw(n.port, b"auth 00112233445566778899aabbccddeeff\r\n"
              b"auth 00112233445566778899aabbccddeeff " + b"00" * 32 + b"\r\nget sk\r\n")
    assert out.startswith(b"NONCE ")
    assert b"CLIENT_ERROR authentication failed\r\n" in out and b"VALUE" not in out
    loose = tmp_path / "loose"
    loose.write_text("correct horse battery staple\n")
    loose.chmod(0o644)
    r = run("kv", "--secret-file", loose, n.addr, "get", "sk")
    assert r.returncode == 2 and b"readable by group or others" in r.stderr


def test_kv_against_a_node(nodes, run, tmp_path):
    (n,) = nodes(1)
    (tmp_path / "v").write_bytes(b"\x00\r\nvalue\n")
    assert run("kv", n.addr, "put", "a/1", tmp_path / "v").returncode == 0
    assert run("kv", n.addr, "put", "a/2", input=b"two").returncode == 0
    assert run("kv", n.addr, "get", "a/1").stdout == b"\x00\r\nvalue\n"
    r = run("kv", n.addr, "stat", "a/1")
    assert r.returncode == 0 and b"size: 9" in r.stdout and n.addr.encode() in r.stdout
    assert sorted(run("kv", n.addr, "ls", "a/").stdout.split()) == [b"a/1", b"a/2"]
    assert run("kv", n.addr, "del", "a/1").returncode == 0
    assert run("kv", n.addr, "del", "a/1").returncode == 1
    assert run("kv", n.addr, "get", "a/1").returncode == 1
    r = run("kv", n.addr, "stat", "a/1")
    assert r.returncode == 1 and b"deleted" in r.stderr
    assert run("kv", n.addr, "ls").stdout.split() == [b"a/2"]
    r = run("kv", n.addr, "stat")
    assert r.returncode == 0 and b"curr_items 1" in r.stdout
    r = run("kv", f"127.0.0.1:{free_port()}", "get", "x")
    assert r.returncode == 3 and b"cannot reach" in r.stderr
