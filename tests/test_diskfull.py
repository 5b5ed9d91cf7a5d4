"""A full disk: writes fail with ENOSPC, nothing acknowledged is lost, no
record is left half-written once space is freed, and the mount keeps working."""
import errno
import hashlib
import os
import subprocess

import pytest


@pytest.fixture
def small_fs(tmp_path):
    d = tmp_path / "small"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(d)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the test: {r.stderr}")
    yield d
    subprocess.run(["umount", "-l", str(d)], capture_output=True)


def test_disk_full(small_fs, mount, run, tmp_path):
    ballast = small_fs / "ballast"
    ballast.write_bytes(b"\0" * (8 << 20))
    m = mount(data=small_fs / "data", mnt=tmp_path / "mnt")
    acked = {}
    hit = None
    for i in range(200):
        p = m.path / f"f{i:03d}.bin"
        data = os.urandom(1 << 20)
        try:
            with open(p, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            hit = e
            break
        acked[p] = hashlib.sha256(data).hexdigest()
    assert hit is not None, "48 MiB never filled up"
    assert hit.errno == errno.ENOSPC, hit
    assert len(acked) > 10
    # still readable while full
    for p, d in list(acked.items())[:5]:
        assert hashlib.sha256(p.read_bytes()).hexdigest() == d
    # space comes back: the mount works again
    ballast.unlink()
    p = m.path / "after.bin"
    data = os.urandom(1 << 20)
    with open(p, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    acked[p] = hashlib.sha256(data).hexdigest()
    m.stop()
    # no half-written record anywhere, no reference to a missing chunk
    r = run("fsck", small_fs / "data")
    assert r.returncode == 0, r.stdout + r.stderr
    m = mount(data=small_fs / "data", mnt=tmp_path / "mnt")
    for p, d in acked.items():
        assert hashlib.sha256(p.read_bytes()).hexdigest() == d, p
