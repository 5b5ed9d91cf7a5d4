"""FUSE over io_uring (fs/daemon/uring.c): with --uring on, requests are served through
the rings of each CPU, bytes and names come back as written, and unmounting ends it
cleanly; --uring off keeps to /dev/fuse; where the kernel does not allow it (the fuse
module's enable_uring is N), --uring on refuses to mount and auto falls back.
Run the whole suite with enable_uring set to Y to run it over io_uring (the default
mode is auto)."""
import hashlib
import json
import os
import subprocess
import threading

import pytest

PARAM = "/sys/module/fuse/parameters/enable_uring"


@pytest.fixture
def enable_uring():
    """set(True|False): the fuse module's enable_uring for this test (as root;
    this kernel is built with CONFIG_FUSE_IO_URING), put back afterwards."""
    if not os.path.exists(PARAM):
        pytest.fail(f"{PARAM} is missing: the kernel has no FUSE over io_uring")
    before = open(PARAM).read().strip()

    def _set(on):
        with open(PARAM, "w") as f:
            f.write("Y\n" if on else "N\n")

    yield _set
    with open(PARAM, "w") as f:
        f.write(before + "\n")


def stats(caskfs_bin, data):
    r = subprocess.run([caskfs_bin, "status", "--json", str(data)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["stats"]


def test_requests_go_through_the_rings(mount, caskfs_bin, tmp_path, enable_uring):
    enable_uring(True)
    m = mount(extra=["--uring", "on"])
    p = m.path
    blobs = {f"d{i % 3}/f{i}": os.urandom(1000 + i * 37_000) for i in range(40)}
    for d in ("d0", "d1", "d2"):
        (p / d).mkdir()

    def writer(names):
        for n in names:
            (p / n).write_bytes(blobs[n])

    names = sorted(blobs)
    threads = [threading.Thread(target=writer, args=(names[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
    for n, data in blobs.items():
        assert hashlib.sha256((p / n).read_bytes()).digest() == hashlib.sha256(data).digest(), n
    assert sorted(os.listdir(p / "d1")) == sorted(n.split("/")[1] for n in blobs
                                                   if n.startswith("d1/"))
    os.rename(p / "d0" / "f0", p / "d2" / "moved")
    os.unlink(p / "d0" / "f3")
    assert (p / "d2" / "moved").read_bytes() == blobs["d0/f0"]
    assert not (p / "d0" / "f3").exists()
    st = stats(caskfs_bin, m.data)
    assert st["caskfs_uring"] == 1, st
    # nearly everything came through the rings (FORGETs and INIT still use /dev/fuse)
    total = sum(v for k, v in st.items() if k.startswith("caskfs_fuse_"))
    assert st["caskfs_uring_requests"] >= total * 0.8, st
    m.stop()
    assert m.proc is None
    # the content survives the remount, over /dev/fuse this time
    m = mount(extra=["--uring", "off"])
    assert (m.path / "d2" / "moved").read_bytes() == blobs["d0/f0"]
    st = stats(caskfs_bin, m.data)
    assert st["caskfs_uring"] == 0 and st["caskfs_uring_requests"] == 0, st


def test_a_signal_ends_a_ring_mount(mount, tmp_path, enable_uring):
    enable_uring(True)
    m = mount(extra=["--uring", "on"])
    (m.path / "f").write_text("x")
    m.proc.send_signal(15)
    assert m.proc.wait(timeout=20) == 0
    m.proc = None
    m.log.close()
    subprocess.run(["fusermount3", "-uz", str(m.path)], capture_output=True)


def test_uring_on_refused_where_the_kernel_says_no(caskfs_bin, mount, tmp_path, enable_uring):
    enable_uring(False)
    (tmp_path / "m").mkdir()
    r = subprocess.run([caskfs_bin, "mount", "-f", "--uring", "on", str(tmp_path / "d"),
                        str(tmp_path / "m")], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "enable_uring" in r.stderr, r.stderr
    m = mount(extra=["--uring", "auto"])
    (m.path / "f").write_text("x")
    assert (m.path / "f").read_text() == "x"


def test_bad_uring_mode_is_usage(caskfs_bin, tmp_path):
    r = subprocess.run([caskfs_bin, "mount", "--uring", "maybe", str(tmp_path / "d"),
                        str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and "--uring" in r.stderr
