"""The fsync journal (docs/FORMAT.md, "Fsync journal"): what an fsync made
durable comes back byte for byte after kill -9, a torn record is ignored,
writes never fsynced may be lost but never leave a file damaged, and the
journal's two files take turns over many fsyncs."""
import os
import struct
import subprocess

JOURNAL_DATA = 4096


def journal_records(data_dir):
    """[(file, offset, length, seq)] of the records each journal file holds
    in its current activation, read the way the daemon reads them (lengths,
    ids and consecutive seqs; checksums are the daemon's business)."""
    out = []
    for n in (0, 1):
        path = data_dir / f"journal.{n}"
        b = path.read_bytes()
        if len(b) < 40 or b[:8] != b"CASKJRNL":
            continue
        flags, fid, first = struct.unpack_from("<IQQ", b, 12)
        if not flags & 1:
            continue
        off, seq = JOURNAL_DATA, first
        while off + 72 <= len(b):
            length, version, rid, rseq = struct.unpack_from("<IIQQ", b, off)
            if length < 72 or off + length > len(b) or version != 1 or rid != fid or rseq != seq:
                break
            out.append((path, off, length, seq))
            off += length
            seq += 1
    return sorted(out, key=lambda r: r[3])


def fsck_clean(caskfs_bin, data_dir):
    r = subprocess.run([caskfs_bin, "fsck", str(data_dir)], capture_output=True, text=True)
    assert r.returncode == 0 and "clean" in r.stdout, r.stdout + r.stderr


def appends_with_fsync(path, count, block=4096):
    """count blocks of new bytes appended, each fsynced; returns the states
    after each fsync (the file's bytes then)."""
    states, data = [], b""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for i in range(count):
            blob = os.urandom(block)
            os.pwrite(fd, blob, len(data))
            os.fsync(fd)
            data += blob
            states.append(data)
    finally:
        os.close(fd)
    return states


def test_fsynced_appends_and_overwrites_survive_kill9(mount, caskfs_bin):
    m = mount()
    states = appends_with_fsync(m.path / "log.bin", 200)
    # overwrites inside two slots and across their boundary, each fsynced
    buf = bytearray(os.urandom((2 << 20) + 5000))
    with open(m.path / "rand.bin", "wb") as f:
        f.write(buf)
    fd = os.open(m.path / "rand.bin", os.O_WRONLY)
    for off in (10, 700000, (1 << 20) - 3000, (2 << 20) + 100, 4096 * 7):
        blob = os.urandom(6000)
        os.pwrite(fd, blob, off)
        os.fsync(fd)
        buf[off:off + len(blob)] = blob
    os.close(fd)
    m.kill9()
    # the fsyncs went through the journal, not through a commit each
    assert len(journal_records(m.data)) >= 150
    m = mount()
    assert (m.path / "log.bin").read_bytes() == states[-1]
    assert (m.path / "rand.bin").read_bytes() == bytes(buf)
    m.stop()
    assert b"records replayed" in open(str(m.data) + ".log", "rb").read()
    fsck_clean(caskfs_bin, m.data)
    # and once replayed, the namespace holds them: a second mount replays nothing
    m = mount()
    assert (m.path / "log.bin").read_bytes() == states[-1]
    m.stop()


def test_writes_not_fsynced_may_be_lost_but_nothing_is_damaged(mount, caskfs_bin):
    m = mount()
    states = appends_with_fsync(m.path / "f", 30)
    data = states[-1]
    fd = os.open(m.path / "f", os.O_WRONLY)
    for i in range(40):  # never fsynced
        blob = os.urandom(3000)
        os.pwrite(fd, blob, len(data))
        data += blob
    os.close(fd)
    m.kill9()
    m = mount()
    got = (m.path / "f").read_bytes()
    m.stop()
    assert len(got) >= len(states[-1]), "an fsynced append was lost"
    assert got == data[:len(got)], "the file holds bytes nobody wrote"
    fsck_clean(caskfs_bin, m.data)


def test_torn_journal_record_is_ignored(mount, caskfs_bin):
    m = mount()
    states = appends_with_fsync(m.path / "f", 40)
    m.kill9()
    recs = journal_records(m.data)
    assert len(recs) >= 30
    path, off, length, _ = recs[-1]
    os.truncate(path, off + length // 2)  # the last record torn
    m = mount()
    got = (m.path / "f").read_bytes()
    m.stop()
    # the torn record's fsync is lost unless a commit held it already; every
    # one before it is there, and nothing else
    assert got in (states[-2], states[-1])
    fsck_clean(caskfs_bin, m.data)
    # the journal file is whole again (preallocated) for the next fsyncs
    assert os.path.getsize(path) == 4 << 20
    m = mount()
    more = appends_with_fsync(m.path / "g", 10)
    m.kill9()
    m = mount()
    assert (m.path / "g").read_bytes() == more[-1]
    assert (m.path / "f").read_bytes() == got


def test_journal_files_take_turns(mount, caskfs_bin):
    # ~4.2 KB a record: 1,500 fsyncs fill more than one file's half, so the
    # committer switches files and empties the older one meanwhile
    m = mount()
    states = appends_with_fsync(m.path / "big", 1500)
    small = appends_with_fsync(m.path / "small", 20, block=100)
    m.kill9()
    m = mount()
    assert (m.path / "big").read_bytes() == states[-1]
    assert (m.path / "small").read_bytes() == small[-1]
    m.stop()
    fsck_clean(caskfs_bin, m.data)


def test_times_set_after_an_fsync_are_not_undone_by_its_record(mount):
    m = mount()
    states = appends_with_fsync(m.path / "f", 5)
    os.utime(m.path / "f", (1000000000, 1200000000))  # after the last record
    m.kill9()  # the page cache keeps the namespace's transactions
    m = mount()
    assert (m.path / "f").read_bytes() == states[-1]
    assert int(os.stat(m.path / "f").st_mtime) == 1200000000


def test_offline_tools_see_the_journal(mount, caskfs_bin):
    """After a kill -9 the journal holds content the namespace does not: gc
    would take its chunks for garbage, so it refuses until a mount replayed
    them, and fsck says they are there."""
    m = mount()
    states = appends_with_fsync(m.path / "tail.bin", 20)
    m.kill9()
    gc = subprocess.run([caskfs_bin, "gc", "--grace", "0", str(m.data)], capture_output=True,
                        text=True)
    assert gc.returncode == 3 and "mount it once" in gc.stderr, gc.stdout + gc.stderr
    fsck = subprocess.run([caskfs_bin, "fsck", str(m.data)], capture_output=True, text=True)
    assert "fsync journal: " in fsck.stdout and "records not yet" in fsck.stdout, fsck.stdout
    m = mount()
    assert (m.path / "tail.bin").read_bytes() == states[-1]
    m.stop()
    gc = subprocess.run([caskfs_bin, "gc", "--grace", "0", str(m.data)], capture_output=True,
                        text=True)
    assert gc.returncode == 0, gc.stdout + gc.stderr
    m = mount()
    assert (m.path / "tail.bin").read_bytes() == states[-1]
