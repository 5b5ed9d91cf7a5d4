"""Sizes and concurrency a photo library meets: a directory of 100,000
entries, a 2 GiB file, and writers renaming over a file while it is read."""
import hashlib
import os
import subprocess
import threading
import time


def test_directory_of_100000_entries(mount):
    d = mount().path / "many"
    d.mkdir()
    n = 100_000
    for i in range(n):
        os.close(os.open(d / f"e{i:06d}", os.O_CREAT | os.O_WRONLY, 0o644))
    r = subprocess.run(["ls", "-f", str(d)], capture_output=True, text=True, check=True)
    names = r.stdout.split()
    assert len(names) == n + 2 and len(set(names)) == n + 2
    r = subprocess.run(["find", str(d), "-type", "f"], capture_output=True, text=True,
                       check=True)
    assert len(r.stdout.split()) == n
    for i in range(0, n, 997):
        assert os.stat(d / f"e{i:06d}").st_size == 0
    assert not os.path.exists(d / "e100000")
    for i in range(n):
        os.unlink(d / f"e{i:06d}")
    assert os.listdir(d) == []
    os.rmdir(d)


def test_2gib_file(mount):
    p = mount().path / "big.bin"
    block = os.urandom(1 << 20)
    want = hashlib.sha256()
    with open(p, "wb") as f:
        for i in range(2048):
            chunk = block[i % 997:] + block[:i % 997]  # every MiB different
            f.write(chunk)
            want.update(chunk)
    assert os.stat(p).st_size == 2 << 30
    got = hashlib.sha256()
    with open(p, "rb") as f:
        while True:
            b = f.read(4 << 20)
            if not b:
                break
            got.update(b)
    assert got.hexdigest() == want.hexdigest()


def _blob(writer, version):
    body = os.urandom(200_000 + version % 50_000)
    head = f"{writer}:{version}:{hashlib.sha256(body).hexdigest()}\n".encode()
    return head + body


def _whole(data):
    head, _, body = data.partition(b"\n")
    parts = head.split(b":")
    return len(parts) == 3 and hashlib.sha256(body).hexdigest().encode() == parts[2]


def test_rename_over_while_reading(mount):
    p = mount().path
    (p / "target").write_bytes(_blob("init", 0))
    stop = time.time() + 4
    errors = []
    reads = [0]

    def writer(name):
        v = 0
        while time.time() < stop:
            tmp = p / f".{name}.tmp"
            tmp.write_bytes(_blob(name, v))
            os.rename(tmp, p / "target")
            v += 1

    def reader():
        while time.time() < stop:
            try:  # the name always leads to a whole file, open or read
                data = (p / "target").read_bytes()
            except OSError as e:
                errors.append(repr(e))
                continue
            reads[0] += 1
            if not _whole(data):
                errors.append(data[:80])

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b")]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert reads[0] > 20
    assert _whole((p / "target").read_bytes())
