"""TLS on the node port and between nodes, and the sealed session of nodes
that have only the shared secret: stock clients over TLS, what is refused
(plaintext, certificates from another CA, garbage, stalled handshakes), a
three-node cluster with mutual TLS through the quorum tests, and captures of
the traffic between two nodes that must not show a stored value.
Reference: docs/PROTOCOL.md ("TLS", "Encrypted session"), docs/OPERATIONS.md."""
import os
import random
import resource
import socket
import ssl
import subprocess
import threading
import time

import pytest
from pymemcache.client.base import Client

import test_cluster as tc
from conftest import ROOT, Node, free_port, wait_port


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA with certificates n0..n5 and client for 127.0.0.1, and another CA
    with a certificate 'stranger' for the same address."""
    base = tmp_path_factory.mktemp("certs")
    make = str(ROOT / "scripts" / "make-certs")
    names = [f"n{i}=127.0.0.1" for i in range(6)] + ["client=127.0.0.1"]
    subprocess.run([make, str(base / "ca"), *names], check=True, capture_output=True)
    subprocess.run([make, "--ca-name", "someone else", str(base / "other"),
                    "stranger=127.0.0.1"], check=True, capture_output=True)
    return base


def client_ctx(certs, name="client", ca="ca", cert_dir="ca"):
    """What a client of the cluster uses: our CA, and a certificate."""
    ctx = ssl.create_default_context(cafile=str(certs / ca / "ca.crt"))
    if name:
        ctx.load_cert_chain(str(certs / cert_dir / f"{name}.crt"),
                            str(certs / cert_dir / f"{name}.key"))
    return ctx


def node_args(certs, name, cert_dir="ca", ca="ca"):
    return ["--tls-cert", str(certs / cert_dir / f"{name}.crt"),
            "--tls-key", str(certs / cert_dir / f"{name}.key"),
            "--tls-ca", str(certs / ca / "ca.crt")]


def cli_args(certs):
    return ["--tls-cert", str(certs / "ca" / "client.crt"),
            "--tls-key", str(certs / "ca" / "client.key"),
            "--tls-ca", str(certs / "ca" / "ca.crt")]


@pytest.fixture
def tls_nodes(caskfs_bin, tmp_path, certs):
    """tls_nodes(count, extra=()) -> [Node] with mutual TLS that know each
    other, like conftest's nodes(); always stopped."""
    started = []

    def _nodes(count, extra=(), start=True):
        ports = [free_port() for _ in range(count)]
        addrs = [f"127.0.0.1:{p}" for p in ports]
        made = []
        for i, port in enumerate(ports):
            peers = [a for a in addrs if a != addrs[i]] if count > 1 else []
            n = Node(caskfs_bin, tmp_path / f"tnode{len(started)}", port, peers,
                     [*node_args(certs, f"n{i}"), *extra])
            n.tls = client_ctx(certs)
            n.client_args = cli_args(certs)
            started.append(n)
            made.append(n)
        if start:
            for n in made:
                n.start()
        return made

    yield _nodes
    for n in started:
        n.stop()


def mc(node, **kw):
    return Client(("127.0.0.1", node.port), connect_timeout=5, timeout=10,
                  default_noreply=False, tls_context=node.tls, **kw)


def refused(port, ctx=None, payload=b"version\r\n"):
    """Whether a client is turned away: the handshake fails, or the node
    closes the connection (within 5 s) having sent nothing but a TLS alert."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if ctx is not None:
            s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
        s.sendall(payload)
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        return data == b"" or (ctx is None and data[:1] == b"\x15" and len(data) <= 7)
    except socket.timeout:
        return False
    except (ssl.SSLError, ConnectionError, OSError):
        return True


# ---- clients ----

def test_pymemcache_over_tls(tls_nodes, run, tmp_path):
    (n,) = tls_nodes(1)
    assert "(mutual TLS)" in n.log()
    c = mc(n)
    rng = random.Random(15)
    values = {f"k{i}": rng.randbytes(size) for i, size in
              enumerate([0, 1, 100, 4096, 16383, 16384, 16385, 70000, 262144, 1 << 20])}
    for key, val in values.items():
        assert c.set(key, val) is True
    for key, val in values.items():
        assert c.get(key) == val, key
    assert c.get_many(list(values)) == values
    assert c.delete("k0") is True and c.get("k0") is None
    # pipelined requests in one write, answered in order over TLS
    s = n.connect()
    s.sendall(b"".join(b"set p%d 0 0 2\r\nv%d\r\n" % (i, i % 10) for i in range(200))
              + b"get p7 p199\r\n")
    want = b"STORED\r\n" * 200 + b"VALUE p7 0 2\r\nv7\r\nVALUE p199 0 2\r\nv9\r\nEND\r\n"
    got = b""
    while len(got) < len(want):
        chunk = s.recv(65536)
        assert chunk
        got += chunk
    assert got == want
    s.close()
    assert c.stats()[b"tls_handshakes"] >= 2
    # caskfs's own clients, with the same options as the nodes
    (tmp_path / "v").write_bytes(values["k8"])
    assert run("kv", *cli_args(n_certs(n)), n.addr, "put", "cli", tmp_path / "v").returncode == 0
    r = run("kv", *cli_args(n_certs(n)), n.addr, "get", "cli")
    assert r.returncode == 0 and r.stdout == values["k8"]
    r = run("status", *cli_args(n_certs(n)), n.addr)
    assert r.returncode == 0, r.stderr


def n_certs(node):
    """The certs directory a TLS node's --tls-ca names."""
    import pathlib
    ca = node.extra[node.extra.index("--tls-ca") + 1]
    return pathlib.Path(ca).parent.parent


def test_what_is_refused(tls_nodes, certs, run):
    (n,) = tls_nodes(1)
    # plaintext memcache: the connection closes, nothing is answered
    assert refused(n.port)
    with pytest.raises(Exception):
        Client(("127.0.0.1", n.port), connect_timeout=5, timeout=5).get("x")
    # TLS without a client certificate, or with one from another CA
    assert refused(n.port, client_ctx(certs, name=None))
    assert refused(n.port, client_ctx(certs, name="stranger", cert_dir="other"))
    with pytest.raises(Exception):
        Client(("127.0.0.1", n.port), connect_timeout=5, timeout=5,
               tls_context=client_ctx(certs, name="stranger", cert_dir="other")).get("x")
    # a client that trusts another CA refuses the node
    with pytest.raises(ssl.SSLCertVerificationError):
        socket_ctx = client_ctx(certs, name="stranger", ca="other", cert_dir="other")
        socket_ctx.wrap_socket(socket.create_connection(("127.0.0.1", n.port)),
                               server_hostname="127.0.0.1")
    # the node's certificate must name the address dialled
    with pytest.raises(ssl.SSLCertVerificationError):
        client_ctx(certs).wrap_socket(socket.create_connection(("127.0.0.1", n.port)),
                                      server_hostname="10.1.2.3")
    # caskfs's client says why
    r = run("kv", n.addr, "get", "x")
    assert r.returncode == 3
    other = ["--tls-cert", str(certs / "other" / "stranger.crt"),
             "--tls-key", str(certs / "other" / "stranger.key"),
             "--tls-ca", str(certs / "ca" / "ca.crt")]
    r = run("kv", *other, n.addr, "get", "x")
    assert r.returncode == 3 and b"unknown ca" in r.stderr, r.stderr
    r = run("kv", "--tls-ca", str(certs / "other" / "ca.crt"), n.addr, "get", "x")
    assert r.returncode == 3 and b"certificate is refused" in r.stderr, r.stderr
    # and the node goes on serving
    assert mc(n).set("after", b"ok") is True
    stats = mc(n).stats()
    assert stats[b"tls_handshake_failures"] >= 5


def test_peer_from_another_ca_is_refused(caskfs_bin, tmp_path, certs):
    pa, pb = free_port(), free_port()
    a_addr, b_addr = f"127.0.0.1:{pa}", f"127.0.0.1:{pb}"
    a = Node(caskfs_bin, tmp_path / "a", pa, [b_addr], node_args(certs, "n0"))
    # b trusts a's CA, but its own certificate comes from another CA
    b = Node(caskfs_bin, tmp_path / "b", pb, [a_addr],
             node_args(certs, "stranger", cert_dir="other", ca="ca"))
    a.tls = client_ctx(certs)
    b.tls = client_ctx(certs, name="client", ca="other")
    try:
        a.start()
        b.start()
        # a dials b and refuses b's certificate: the write misses its quorum
        with pytest.raises(Exception):
            mc(a).set("k1", b"v1")
        # b dials a, and a refuses b's certificate
        with pytest.raises(Exception):
            mc(b).set("k2", b"v2")
        time.sleep(0.3)
        assert "certificate is refused" in a.log()
        assert "unknown ca" in b.log() or "certificate" in b.log()
        assert mc(a).stats()[b"tls_handshake_failures"] >= 1
        # neither holds the other's write (a copy only where it was written)
        assert mc(a).get("?k2") is None and mc(b).get("?k1") is None
    finally:
        a.stop()
        b.stop()


def test_listen_outside_loopback_needs_secret_or_mutual_tls(caskfs_bin, tmp_path, certs):
    tls_only = ["--tls-cert", str(certs / "ca" / "n0.crt"), "--tls-key",
                str(certs / "ca" / "n0.key")]
    r = subprocess.run([caskfs_bin, "serve", str(tmp_path / "d"), "--listen",
                        f"0.0.0.0:{free_port()}", *tls_only],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "not a loopback address" in r.stderr and "--tls-ca" in r.stderr
    r = subprocess.run([caskfs_bin, "serve", str(tmp_path / "d"), "--listen",
                        f"127.0.0.1:{free_port()}", "--tls-cert", str(certs / "ca" / "n0.crt")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "go together" in r.stderr
    r = subprocess.run([caskfs_bin, "serve", str(tmp_path / "d"), "--listen",
                        f"127.0.0.1:{free_port()}", "--tls-cert", str(certs / "ca" / "n0.crt"),
                        "--tls-key", str(certs / "ca" / "n1.key")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "n1.key" in r.stderr and "mismatch" in r.stderr


# ---- bad input over TLS ----

def client_hello():
    """The first bytes a real TLS client sends."""
    ctx = ssl.create_default_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def test_garbage_instead_of_a_handshake(tls_nodes):
    (n,) = tls_nodes(1)
    rng = random.Random(21)
    hello = client_hello()
    payloads = [b"\x16\x03\x01\xff\xff" + rng.randbytes(3000),  # a record too long
                b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"\x80\x01\x00\x03" + bytes(20),
                hello[:5] + rng.randbytes(len(hello) - 5), bytes(5000)]
    payloads += [rng.randbytes(rng.randrange(1, 20000)) for _ in range(40)]
    for p in payloads:
        assert refused(n.port, payload=p), p[:20]
    assert mc(n).set("still", b"here") is True and mc(n).get("still") == b"here"
    stats = mc(n).stats()
    assert stats[b"tls_handshake_failures"] >= 40
    assert stats[b"curr_connections"] < 10


def test_malformed_requests_over_tls(tls_nodes, monkeypatch):
    """test_node.py's bad-input test, every byte of it inside TLS."""
    import test_node as tn
    (n,) = tls_nodes(1)

    def raw(port, payload, wait=0.3, timeout=5, until=None):
        # test_node's raw(), through TLS: everything read until quiet for
        # wait seconds, or until the data ends with until
        assert port == n.port
        s = n.connect(timeout)
        s.sendall(payload)
        data = b""
        s.settimeout(wait)
        try:
            while until is None or not data.endswith(until):
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, ssl.SSLError, ConnectionError):
            pass
        s.close()
        return data

    monkeypatch.setattr(tn, "raw", raw)
    monkeypatch.setattr(tn, "client", lambda node, **kw: Client(
        ("127.0.0.1", node.port), connect_timeout=5, timeout=10, tls_context=node.tls, **kw))
    tn.test_bad_input(lambda count: [n])


def test_5000_stalled_handshakes(tls_nodes):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard >= 6000, "the test needs 5,000 sockets: raise the hard limit of open files"
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    (n,) = tls_nodes(1)
    hello = client_hello()
    good = mc(n)
    good.set("steady", b"s" * 4096)
    errors, served, fresh = [], [0], [0, 0]
    stop = threading.Event()

    def well_behaved():
        i = 0
        while not stop.is_set():
            try:
                val = os.urandom(i % 9000)
                assert good.set(f"g{i % 20}", val) is True
                assert good.get(f"g{i % 20}") == val
                served[0] += 1
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                errors.append(repr(e))
                return
            if i % 25 == 0:  # and new connections get in during the flood
                try:
                    fresh[0] += mc(n).get("steady") == b"s" * 4096
                except Exception:  # noqa: BLE001
                    fresh[1] += 1
            i += 1

    t = threading.Thread(target=well_behaved)
    t.start()
    rss_before = n.rss_kib()
    stalled = []
    try:
        for i in range(5000):
            try:
                s = socket.create_connection(("127.0.0.1", n.port), timeout=5)
            except OSError:
                continue
            if i % 2 == 0:  # half send part of a ClientHello, half nothing
                s.send(hello[:1 + i % (len(hello) - 1)])
            stalled.append(s)
        rss_peak = n.rss_kib()
        time.sleep(0.5)
        rss_peak = max(rss_peak, n.rss_kib())
        assert len(stalled) >= 4900
        served_during = served[0]
        # the node drops what it cannot finish within a few seconds
        time.sleep(4)
        stats = mc(n).stats()
    finally:
        stop.set()
        t.join(timeout=30)
        for s in stalled:
            s.close()
    assert not errors, errors
    assert served_during > 0 and served[0] > served_during
    assert fresh[0] > 0 and fresh[1] <= fresh[0] // 10, fresh
    assert stats[b"tls_handshakes_dropped"] >= 4000
    assert stats[b"curr_connections"] < 20
    # at most 4 loops x 128 handshakes hold a TLS session at once
    print("rss KiB before, peak:", rss_before, rss_peak, "served", served[0], "fresh", fresh)
    assert rss_peak - rss_before < 64 * 1024, (rss_before, rss_peak)
    assert good.get("steady") == b"s" * 4096


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_record_cut_in_half_costs_no_cpu(tls_nodes, certs):
    """A client that stops in the middle of a TLS record leaves bytes in the
    node's TLS buffer that only more bytes can complete: the node must wait
    for the socket, not spin on them."""
    (n,) = tls_nodes(1)
    sock = socket.create_connection(("127.0.0.1", n.port), timeout=5)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_ctx(certs).wrap_bio(inc, out, server_hostname="127.0.0.1")
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(out.read())
            inc.write(sock.recv(65536))
    sock.sendall(out.read())
    value = os.urandom(100_000)
    tls.write(b"set slow 0 0 %d\r\n%s\r\n" % (len(value), value))
    records = out.read()
    cut = len(records) // 2 + 7
    sock.sendall(records[:cut])
    time.sleep(0.3)
    before = cpu_seconds(n.proc.pid)
    time.sleep(1.5)
    spent = cpu_seconds(n.proc.pid) - before
    assert spent < 0.3, f"the node used {spent:.2f} s of CPU waiting for half a record"
    sock.sendall(records[cut:])
    reply = b""
    while not reply.endswith(b"\r\n"):
        try:
            reply += tls.read(100)
        except ssl.SSLWantReadError:
            inc.write(sock.recv(65536))
    assert reply == b"STORED\r\n"
    sock.close()
    assert mc(n).get("slow") == value


# ---- a cluster with mutual TLS: the quorum tests of test_cluster.py ----

def test_tls_every_object_on_exactly_n_nodes(tls_nodes, run):
    tc.test_every_object_on_exactly_n_nodes(tls_nodes, run)


def test_tls_quorum_clamped_to_the_cluster(tls_nodes):
    tc.test_quorum_clamped_to_the_cluster(tls_nodes)


def test_tls_read_repair(tls_nodes):
    tc.test_read_repair(tls_nodes)


def test_tls_hinted_handoff_survives_a_restart(tls_nodes):
    tc.test_hinted_handoff_survives_a_restart(tls_nodes)


def test_tls_mount_with_peers(caskfs_bin, tmp_path, mount, certs):
    ports = [free_port() for _ in range(3)]
    addrs = [f"127.0.0.1:{p}" for p in ports]
    peers = []
    for i in (1, 2):
        p = Node(caskfs_bin, tmp_path / f"peer{i}", ports[i],
                 [a for a in addrs if a != addrs[i]], node_args(certs, f"n{i}"))
        p.tls = client_ctx(certs)
        peers.append(p.start())
    try:
        m = mount(extra=["--listen", addrs[0], "--peers", f"{addrs[1]},{addrs[2]}",
                         *node_args(certs, "n0")])
        data = random.Random(4).randbytes(2_500_000)
        tc.write_synced(m.path / "photo.jpg", data)
        chunks = tc.local_keys(peers[0], "c/")
        assert len(chunks) >= 3 and tc.local_keys(peers[1], "c/") == chunks
        assert (m.path / "photo.jpg").read_bytes() == data
    finally:
        for p in peers:
            p.stop()


# ---- what crosses the wire between two nodes ----

class Relay:
    """Forwards connections from its port to target and keeps every byte."""

    def __init__(self, target_port):
        self.target = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.captured = bytearray()
        self.lock = threading.Lock()
        self.conns = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.lock:
                    self.captured += data
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns += 1
            u = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c), daemon=True).start()

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("mode", ["plain", "secret", "tls"])
def test_capture_between_nodes(mode, caskfs_bin, tmp_path, certs, run):
    secret = tmp_path / "secret"
    secret.write_text("a shared secret of the cluster, long enough\n")
    secret.chmod(0o600)
    pa, pb = free_port(), free_port()
    relay = Relay(pb)
    a_addr, b_addr = f"127.0.0.1:{pa}", f"127.0.0.1:{pb}"
    extra_a, extra_b = [], []
    if mode == "secret":
        extra_a = extra_b = ["--secret-file", str(secret)]
    elif mode == "tls":
        extra_a, extra_b = node_args(certs, "n0"), node_args(certs, "n1")
    # a knows b only by the relay's address
    a = Node(caskfs_bin, tmp_path / "a", pa, [f"127.0.0.1:{relay.port}"], extra_a)
    b = Node(caskfs_bin, tmp_path / "b", pb, [a_addr], extra_b)
    try:
        b.start()
        a.start()
        marker = b"PLAINTEXT-OF-A-PHOTO-"
        value = (marker * 4000) + os.urandom(300_000) + marker * 10
        small = b"a small value, also private: " + marker
        (tmp_path / "v").write_bytes(value)
        (tmp_path / "s").write_bytes(small)
        args = {"plain": [], "secret": ["--secret-file", str(secret)],
                "tls": cli_args(certs)}[mode]
        for key, f in (("photo/secret-key", "v"), ("note", "s")):
            r = run("kv", *args, a_addr, "put", key, tmp_path / f)
            assert r.returncode == 0, r.stderr
        # b holds both (through the relay: a has no other way to b)
        for key, val in (("photo/secret-key", value), ("note", small)):
            r = run("kv", b.data, "get", key)
            assert r.returncode == 0 and r.stdout == val, (key, r.stderr)
        # a read through b of what only b... both hold it; a's read of a key
        # b holds and a lacks crosses the relay back
        r = run("kv", *args, a_addr, "get", "photo/secret-key")
        assert r.returncode == 0 and r.stdout == value
        time.sleep(0.2)
        with relay.lock:
            wire = bytes(relay.captured)
        assert relay.conns >= 1 and len(wire) >= len(value)
        if mode == "plain":
            # the control: without either, the relay sees everything
            assert marker in wire and b"photo/secret-key" in wire
        else:
            assert marker not in wire
            assert b"photo/secret-key" not in wire and b"xset" not in wire
            assert value[-400_000:-200_000] not in wire
    finally:
        relay.close()
        a.stop()
        b.stop()


def test_sealed_session_carries_large_values(nodes, tmp_path, run):
    secret = tmp_path / "secret"
    secret.write_text("correct horse battery staple\n")
    secret.chmod(0o600)
    (n,) = nodes(1, extra=["--secret-file", str(secret)])
    rng = random.Random(8)
    for size in (0, 1, 65535, 65536, 65537, 1 << 20, 5_000_000):
        val = rng.randbytes(size)
        (tmp_path / "v").write_bytes(val)
        assert run("kv", "--secret-file", secret, n.addr, "put", f"s{size}",
                   tmp_path / "v").returncode == 0
        r = run("kv", "--secret-file", secret, n.addr, "get", f"s{size}")
        assert r.returncode == 0 and r.stdout == val, size
    r = run("status", "--secret-file", secret, n.addr)
    assert r.returncode == 0 and b"7 live" in r.stdout, r.stdout
    # after a good handshake, plaintext is not a record: the session closes
    import hashlib
    import hmac
    k = hashlib.blake2b(b"correct horse battery staple", digest_size=32).digest()
    s = socket.create_connection(("127.0.0.1", n.port), timeout=5)
    cn = os.urandom(16)
    s.sendall(b"auth %s\r\n" % cn.hex().encode())
    line = s.recv(100)
    assert line.startswith(b"NONCE ")
    sn = bytes.fromhex(line[6:].strip().decode())
    proof = hmac.new(k, b"caskfs-auth-1-c\0" + cn + sn, "sha256").hexdigest()
    s.sendall(b"auth %s %s\r\n" % (cn.hex().encode(), proof.encode()))
    want = hmac.new(k, b"caskfs-auth-1-s\0" + cn + sn, "sha256").hexdigest()
    assert s.recv(100) == b"OK %s\r\n" % want.encode()
    s.sendall(b"get s1\r\n")
    assert s.recv(100) == b""
    s.close()


# ---- the cluster map's commands over mutual TLS ----

def tls_stat(node, name):
    return int(mc(node).stats()[name.encode()])


def until(check, timeout=60.0):
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, "not reached in time"
        time.sleep(0.3)


def test_tls_cluster_add_and_show(tls_nodes, caskfs_bin, tmp_path, certs, run):
    """Three nodes with mutual TLS agree on a cluster map (gossip over TLS);
    `caskfs cluster add` with the client's certificate makes a fourth node a
    member, the buckets move over TLS, and every object ends on exactly
    three of the four. Without a certificate the command cannot reach them."""
    three = tls_nodes(3, extra=["--sync-interval", "1"])
    until(lambda: all(tls_stat(n, "caskfs_map_epoch") >= 1 for n in three))
    keys = [f"grow/{i}" for i in range(300)]
    c = mc(three[0])
    for k in keys:
        assert c.set(k, k.encode() * 10) is True

    port = free_port()
    fourth = Node(caskfs_bin, tmp_path / "tnode-new", port, [three[0].addr],
                  [*node_args(certs, "n3"), "--sync-interval", "1"])
    fourth.tls = client_ctx(certs)
    try:
        fourth.start()
        r = run("cluster", "add", "--timeout", "120", *cli_args(certs),
                three[1].addr, fourth.addr, timeout=180)
        assert r.returncode == 0, (r.stdout + r.stderr).decode()
        four = [*three, fourth]
        until(lambda: all(tls_stat(n, "caskfs_nodes") == 4 for n in four))
        held = {n.addr: tc.local_keys(n) for n in four}
        for k in keys:
            where = [a for a, ks in held.items() if k in ks]
            assert len(where) == 3, (k, where)
        assert len(held[fourth.addr]) > 0
        assert mc(fourth).get(keys[7]) == keys[7].encode() * 10

        shown = run("cluster", "show", *cli_args(certs), fourth.addr)
        assert shown.returncode == 0, (shown.stdout + shown.stderr).decode()
        assert all(n.addr.encode() in shown.stdout for n in four)
        plain = run("cluster", "show", "--timeout", "5", fourth.addr, timeout=60)
        assert plain.returncode != 0
    finally:
        fourth.stop()
