"""caskfs fsck DATA_DIR: clean data says clean (exit 0); a missing chunk and a
damaged record are each reported on a line of their own (exit 1)."""
import os
import subprocess


def fsck(caskfs_bin, data):
    return subprocess.run([caskfs_bin, "fsck", str(data)], capture_output=True, text=True)


def fill(mount):
    m = mount()
    os.makedirs(m.path / "photos")
    for i in range(5):
        (m.path / "photos" / f"p{i}.jpg").write_bytes(os.urandom(300000 + i))
    (m.path / "notes.txt").write_text("a comment\n" * 1000)
    m.stop()
    return m


def test_clean(caskfs_bin, mount):
    m = fill(mount)
    r = fsck(caskfs_bin, m.data)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "clean" in r.stdout and "0 problems" in r.stdout


def test_missing_chunk(caskfs_bin, mount):
    m = fill(mount)
    chunks = subprocess.run([caskfs_bin, "kv", str(m.data), "ls", "c/"], capture_output=True,
                            text=True).stdout.split()
    assert len(chunks) == 6
    subprocess.run([caskfs_bin, "kv", str(m.data), "del", chunks[0]], check=True)
    r = fsck(caskfs_bin, m.data)
    assert r.returncode == 1
    assert f"({chunks[0]}) is missing" in r.stdout
    assert "NOT CLEAN (1 problems)" in r.stdout


def test_damaged_record(caskfs_bin, mount):
    m = fill(mount)
    seg = m.data / "log" / "000001.cask"
    raw = bytearray(seg.read_bytes())
    raw[len(raw) // 3] ^= 0x55  # inside some record, not the last one
    seg.write_bytes(bytes(raw))
    r = fsck(caskfs_bin, m.data)
    assert r.returncode == 1, r.stdout
    assert "fails its checksum" in r.stdout


def test_usage_and_busy(caskfs_bin, mount, tmp_path):
    assert subprocess.run([caskfs_bin, "fsck"], capture_output=True).returncode == 2
    m = mount()
    r = fsck(caskfs_bin, m.data)
    assert r.returncode == 3 and "in use by process" in r.stderr
