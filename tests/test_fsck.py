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


def test_damaged_chunk_fails_reads_through_the_mount(caskfs_bin, mount):
    """The store does not hash a chunk's bytes on a read (the mount checks them
    against the chunk's id): a flipped byte in one still fails every read of
    it, by whole-chunk READs and by small ones, and the other chunks read."""
    import errno
    m = mount()
    data = os.urandom(3 * 1024 * 1024 + 5000)
    (m.path / "f").write_bytes(data)
    m.stop()
    chunks = subprocess.run([caskfs_bin, "kv", str(m.data), "ls", "c/"], capture_output=True,
                            text=True).stdout.split()
    assert len(chunks) == 4
    seg = m.data / "log" / "000001.cask"
    raw = bytearray(seg.read_bytes())
    at = raw.find(chunks[0].encode())
    assert at > 0
    raw[at + len(chunks[0]) + 4000] ^= 0x10  # inside that chunk's value
    seg.write_bytes(bytes(raw))
    for small in (False, True):
        m = mount()
        bad = []
        with open(m.path / "f", "rb", buffering=0) as f:
            if small:  # no readahead: one 4 KiB READ at a time, by range
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_RANDOM)
            for piece in range(4):
                try:
                    got = os.pread(f.fileno(), 4096 if small else 1 << 20, piece << 20)
                    assert got == data[piece << 20:(piece << 20) + len(got)]
                except OSError as e:
                    assert e.errno == errno.EBADMSG, e
                    bad.append(piece)
        assert len(bad) == 1, bad
        m.stop()


def test_usage_and_busy(caskfs_bin, mount, tmp_path):
    assert subprocess.run([caskfs_bin, "fsck"], capture_output=True).returncode == 2
    m = mount()
    r = fsck(caskfs_bin, m.data)
    assert r.returncode == 3 and "in use by process" in r.stderr


def two_node_mount(caskfs_bin, mount, tmp_path):
    """A mount that is a node, with one serve peer holding a copy of every chunk."""
    from conftest import Node, free_port
    pa, pb = free_port(), free_port()
    peer = Node(caskfs_bin, tmp_path / "peer", pb, [f"127.0.0.1:{pa}"]).start()
    m = mount(extra=["--listen", f"127.0.0.1:{pa}", "--peers", f"127.0.0.1:{pb}"])
    files = {}
    for i in range(6):
        data = os.urandom(200_000 + 1000 * i)
        (m.path / f"p{i}.jpg").write_bytes(data)
        files[f"p{i}.jpg"] = data
    m.stop()
    return m, peer, files


def repair(caskfs_bin, data, peer):
    return subprocess.run([caskfs_bin, "fsck", "--repair", "--peers", peer.addr, str(data)],
                          capture_output=True, text=True)


def test_flipped_byte_repaired_from_a_peer(caskfs_bin, mount, tmp_path):
    m, peer, files = two_node_mount(caskfs_bin, mount, tmp_path)
    try:
        seg = m.data / "log" / "000001.cask"
        raw = bytearray(seg.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        seg.write_bytes(bytes(raw))
        r = fsck(caskfs_bin, m.data)
        assert r.returncode == 1
        assert "fails its checksum" in r.stdout or "is missing" in r.stdout, r.stdout
        r = repair(caskfs_bin, m.data, peer)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"from {peer.addr}" in r.stdout and "after repair: clean" in r.stdout
        assert fsck(caskfs_bin, m.data).returncode == 0
        m2 = mount()
        for name, data in files.items():
            assert (m2.path / name).read_bytes() == data
    finally:
        peer.stop()


def test_truncated_segment_repaired_from_a_peer(caskfs_bin, mount, tmp_path):
    m, peer, files = two_node_mount(caskfs_bin, mount, tmp_path)
    try:
        seg = m.data / "log" / "000001.cask"
        size = seg.stat().st_size
        os.truncate(seg, size * 2 // 3)
        r = fsck(caskfs_bin, m.data)
        assert r.returncode == 1
        assert "is missing" in r.stdout, r.stdout
        r = repair(caskfs_bin, m.data, peer)
        assert r.returncode == 0, r.stdout + r.stderr
        m2 = mount()
        for name, data in files.items():
            assert (m2.path / name).read_bytes() == data
        # without a peer that holds them, the same damage cannot be repaired
    finally:
        peer.stop()


def test_hint_that_lies(caskfs_bin, tmp_path):
    def kv(d, *args, input=None):
        return subprocess.run([caskfs_bin, "kv", "--segment-size", "20000", str(d), *args],
                              input=input, capture_output=True, check=True)

    a, b = tmp_path / "a", tmp_path / "b"
    keys = [f"key{i:02d}" for i in range(30)]
    vals = {k: os.urandom(1000) for k in keys}  # random: stored as they are
    for k in keys:
        kv(a, "put", k, input=vals[k])
    for k in reversed(keys):  # same layout, other keys at each offset
        kv(b, "put", k, input=os.urandom(1000))
    assert (a / "log" / "000001.hint").exists()
    (a / "log" / "000001.hint").write_bytes((b / "log" / "000001.hint").read_bytes())
    r = fsck(caskfs_bin, a)
    assert r.returncode == 1
    assert "the hint file disagrees with this record" in r.stdout, r.stdout
    r = subprocess.run([caskfs_bin, "fsck", "--repair", str(a)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "hint of segment 000001 rebuilt" in r.stdout
    assert fsck(caskfs_bin, a).returncode == 0
    for k in keys:
        got = subprocess.run([caskfs_bin, "kv", str(a), "get", k], capture_output=True)
        assert got.stdout == vals[k]
