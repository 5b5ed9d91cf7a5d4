"""Shared fixtures for the pytest suites: the caskfs binary and helpers to run it."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def caskfs_bin():
    path = pathlib.Path(os.environ.get("CASKFS_BIN", ROOT / "build" / "caskfs"))
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"caskfs binary not found at {path}: run 'make' first")
    return str(path)


@pytest.fixture
def run(caskfs_bin):
    """run(*args, input=bytes) -> CompletedProcess with bytes stdout/stderr."""

    def _run(*args, input=None, timeout=60):
        return subprocess.run([caskfs_bin, *map(str, args)], input=input,
                              capture_output=True, timeout=timeout)

    return _run


class Mount:
    """A caskfs mount in the foreground (so its PID is known), for one test."""

    def __init__(self, caskfs_bin, data_dir, mountpoint, extra=()):
        self.bin = caskfs_bin
        self.data = data_dir
        self.path = mountpoint
        self.extra = list(extra)
        self.proc = None
        self.log = None

    def start(self):
        import time
        self.path.mkdir(parents=True, exist_ok=True)
        self.log = open(str(self.data) + ".log", "ab")
        self.proc = subprocess.Popen([self.bin, "mount", "-f", *self.extra, str(self.data),
                                      str(self.path)], stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while not os.path.ismount(self.path):
            if self.proc.poll() is not None:
                raise RuntimeError(f"caskfs mount exited with {self.proc.returncode}: "
                                   + open(str(self.data) + ".log").read())
            if time.time() > deadline:
                raise RuntimeError("caskfs mount did not come up in 20 s")
            time.sleep(0.02)
        return self

    def stop(self):
        """Unmounts (lazily if it must) and waits for the daemon; kills it by PID last."""
        if self.proc is None:
            return
        if os.path.ismount(self.path):
            r = subprocess.run(["fusermount3", "-u", str(self.path)], capture_output=True)
            if r.returncode != 0:
                subprocess.run(["fusermount3", "-uz", str(self.path)], capture_output=True)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self.log.close()

    def kill9(self):
        import signal
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        subprocess.run(["fusermount3", "-uz", str(self.path)], capture_output=True)
        self.proc = None
        self.log.close()


@pytest.fixture
def mount(caskfs_bin, tmp_path):
    """mount() -> a started Mount on tmp_path/data at tmp_path/mnt; always unmounted."""
    started = []

    def _mount(data=None, mnt=None, extra=()):
        m = Mount(caskfs_bin, data or tmp_path / "data", mnt or tmp_path / "mnt", extra)
        started.append(m)
        return m.start()

    yield _mount
    for m in started:
        m.stop()


@pytest.fixture
def public_mnt():
    """A mountpoint other users can reach (pytest's tmp dirs are 0700 root)."""
    import pathlib
    import shutil
    import tempfile
    path = pathlib.Path(tempfile.mkdtemp(prefix="caskfs-pub-"))
    os.chmod(path, 0o755)
    (path / "mnt").mkdir()
    os.chmod(path / "mnt", 0o755)
    yield path / "mnt"
    if os.path.ismount(path / "mnt"):
        subprocess.run(["fusermount3", "-uz", str(path / "mnt")], capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, log=None, timeout=20):
    """Waits until 127.0.0.1:port accepts connections (or proc dies)."""
    import socket
    import time
    deadline = time.time() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            text = open(log).read() if log else ""
            raise RuntimeError(f"node exited with {proc.returncode}: {text}")
        if time.time() > deadline:
            raise RuntimeError(f"nothing listens on port {port} after {timeout} s")
        time.sleep(0.02)


class Node:
    """A `caskfs serve` node on 127.0.0.1, started and killed by PID.

    A node that runs TLS has tls (an ssl.SSLContext its clients use) and
    client_args (the caskfs options a client needs to reach it)."""

    tls = None
    client_args = ()

    def __init__(self, caskfs_bin, data_dir, port, peers=(), extra=()):
        self.bin = caskfs_bin
        self.data = data_dir
        self.port = port
        self.addr = f"127.0.0.1:{port}"
        self.peers = list(peers)
        self.extra = list(extra)
        self.proc = None
        self.logpath = str(data_dir) + ".log"

    def start(self):
        args = [self.bin, "serve", str(self.data), "--listen", self.addr, *self.extra]
        if self.peers:
            args += ["--peers", ",".join(self.peers)]
        with open(self.logpath, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        wait_port(self.port, self.proc, self.logpath)
        return self

    def log(self):
        return open(self.logpath, errors="replace").read()

    def connect(self, timeout=10):
        """A socket to the node, through TLS when the node runs it."""
        import socket
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        if self.tls is not None:
            s = self.tls.wrap_socket(s, server_hostname="127.0.0.1")
        return s

    def rss_kib(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def kill9(self):
        import signal
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def nodes(caskfs_bin, tmp_path):
    """nodes(count, extra=()) -> [Node] that know each other, started; always stopped."""
    started = []

    def _nodes(count, extra=(), start=True):
        ports = [free_port() for _ in range(count)]
        addrs = [f"127.0.0.1:{p}" for p in ports]
        made = []
        for i, port in enumerate(ports):
            peers = [a for a in addrs if a != addrs[i]] if count > 1 else []
            n = Node(caskfs_bin, tmp_path / f"node{len(started)}", port, peers, extra)
            started.append(n)
            made.append(n)
        if start:
            for n in made:
                n.start()
        return made

    yield _nodes
    for n in started:
        n.stop()
