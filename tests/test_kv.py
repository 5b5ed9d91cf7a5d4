"""`caskfs kv DATA_DIR ...` end to end: round trips, listing, stat, deletes,
exit statuses, the DATA_DIR lock, corruption and torn tails."""
import os
import re
import subprocess

import pytest


def segment(data_dir, n=1):
    return data_dir / "log" / f"{n:06d}.cask"


@pytest.mark.parametrize("size", [0, 1, 250, 4096, 1 << 20, 5 << 20 | 17])
def test_roundtrip_file_and_stdin(run, tmp_path, size):
    data = tmp_path / "data"
    blob = os.urandom(size)
    src = tmp_path / "src.bin"
    src.write_bytes(blob)
    r = run("kv", data, "put", "from-file", src)
    assert r.returncode == 0, r.stderr
    r = run("kv", data, "put", "from-stdin", input=blob)
    assert r.returncode == 0, r.stderr
    for key in ("from-file", "from-stdin"):
        r = run("kv", data, "get", key)
        assert r.returncode == 0, r.stderr
        assert r.stdout == blob


def test_text_is_compressed_and_exact(run, tmp_path):
    data = tmp_path / "data"
    text = ("comment: a photo of the harbour at dusk\n" * 2000).encode()
    assert run("kv", data, "put", "notes/1", input=text).returncode == 0
    r = run("kv", data, "stat", "notes/1")
    assert r.returncode == 0
    fields = dict(line.split(": ", 1) for line in r.stdout.decode().splitlines())
    assert fields["size"] == str(len(text))
    assert fields["compressed"] == "yes"
    assert int(fields["stored"]) < len(text) // 10
    assert run("kv", data, "get", "notes/1").stdout == text


def test_ls_stat_del(run, tmp_path):
    data = tmp_path / "data"
    for k in ["photos/a.jpg", "photos/b.jpg", "audio/c.ogg"]:
        assert run("kv", data, "put", k, input=k.encode() * 10).returncode == 0
    r = run("kv", data, "ls")
    assert sorted(r.stdout.decode().split()) == ["audio/c.ogg", "photos/a.jpg", "photos/b.jpg"]
    r = run("kv", data, "ls", "photos/")
    assert sorted(r.stdout.decode().split()) == ["photos/a.jpg", "photos/b.jpg"]
    r = run("kv", data, "stat", "photos/a.jpg")
    assert r.returncode == 0
    out = r.stdout.decode()
    for field in ("size: 120", "stamp: ", "node: 1", "value_hash: ", "segment: 1"):
        assert field in out
    r = run("kv", data, "stat")
    assert r.returncode == 0
    assert "keys: 3" in r.stdout.decode()
    assert re.search(r"tree_root: [0-9a-f]{16}", r.stdout.decode())

    assert run("kv", data, "del", "photos/a.jpg").returncode == 0
    r = run("kv", data, "get", "photos/a.jpg")
    assert r.returncode == 1
    assert b"no such key" in r.stderr
    assert r.stdout == b""
    r = run("kv", data, "stat", "photos/a.jpg")
    assert r.returncode == 1
    assert b"deleted" in r.stderr
    r = run("kv", data, "del", "photos/a.jpg")
    assert r.returncode == 1
    assert sorted(run("kv", data, "ls").stdout.decode().split()) == ["audio/c.ogg",
                                                                      "photos/b.jpg"]
    r = run("kv", data, "stat")
    assert "keys: 2" in r.stdout.decode() and "tombstones: 1" in r.stdout.decode()


def test_overwrite_keeps_latest(run, tmp_path):
    data = tmp_path / "data"
    for i in range(20):
        assert run("kv", data, "put", "k", input=f"version {i}".encode()).returncode == 0
    assert run("kv", data, "get", "k").stdout == b"version 19"


@pytest.mark.parametrize("args", [
    [],
    ["kv"],
    ["kv", "DIR"],
    ["kv", "DIR", "frobnicate", "k"],
    ["kv", "DIR", "get"],
    ["kv", "DIR", "get", "a", "b"],
    ["kv", "DIR", "put"],
    ["kv", "DIR", "put", "k", "f", "extra"],
    ["kv", "DIR", "ls", "a", "b"],
    ["kv", "DIR", "get", "k" * 251],
    ["kv", "DIR", "get", ""],
    ["kv", "--sync", "sometimes", "DIR", "ls"],
    ["kv", "--node-id", "0", "DIR", "ls"],
    ["kv", "--node-id", "x", "DIR", "ls"],
    ["kv", "--segment-size", "10", "DIR", "ls"],
    ["kv", "--no-such-option", "DIR", "ls"],
    ["nosuchcommand"],
])
def test_bad_usage(run, tmp_path, args):
    args = [str(tmp_path / "d") if a == "DIR" else a for a in args]
    r = run(*args)
    assert r.returncode == 2, (args, r.stderr)
    assert b"usage" in r.stderr or b"invalid" in r.stderr


def test_help(run):
    for args in (["--help"], ["kv", "--help"]):
        r = run(*args)
        assert r.returncode == 0
        assert b"usage: caskfs" in r.stdout


def test_put_missing_file_and_too_large(run, tmp_path):
    data = tmp_path / "data"
    r = run("kv", data, "put", "k", tmp_path / "nope")
    assert r.returncode == 2
    assert b"cannot open" in r.stderr
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate((64 << 20) + 1)
    r = run("kv", data, "put", "k", big)
    assert r.returncode == 2
    assert b"larger than" in r.stderr
    assert run("kv", data, "get", "k").returncode == 1


def test_lock_names_owner(caskfs_bin, run, tmp_path):
    data = tmp_path / "data"
    # A put that reads stdin holds the DATA_DIR while we keep stdin open.
    holder = subprocess.Popen([caskfs_bin, "kv", str(data), "put", "held"],
                              stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            if (data / "LOCK").exists() and (data / "LOCK").read_text().strip():
                break
            subprocess.run(["sleep", "0.02"])
        r = run("kv", data, "ls")
        assert r.returncode == 3
        assert f"in use by process {holder.pid}".encode() in r.stderr
        holder.stdin.write(b"value")
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert run("kv", data, "get", "held").stdout == b"value"


def test_corrupt_value_is_reported(run, tmp_path):
    data = tmp_path / "data"
    payload = os.urandom(4000)
    assert run("kv", data, "put", "good", input=b"fine").returncode == 0
    assert run("kv", data, "put", "victim", input=payload).returncode == 0
    assert run("kv", data, "put", "after", input=b"also fine").returncode == 0
    seg = segment(data)
    raw = bytearray(seg.read_bytes())
    pos = raw.find(payload[100:132])
    assert pos > 0
    raw[pos] ^= 0xFF
    seg.write_bytes(bytes(raw))
    r = run("kv", data, "get", "victim")
    assert r.returncode == 4
    assert b"checksum" in r.stderr
    assert r.stdout == b""
    assert run("kv", data, "get", "good").stdout == b"fine"
    assert run("kv", data, "get", "after").stdout == b"also fine"


def test_torn_tail_is_cut_and_reported(run, tmp_path):
    data = tmp_path / "data"
    for i in range(5):
        assert run("kv", data, "put", f"k{i}", input=os.urandom(1000)).returncode == 0
    seg = segment(data)
    size = seg.stat().st_size
    with open(seg, "r+b") as f:
        f.truncate(size - 300)
    r = run("kv", data, "ls")
    assert r.returncode == 0
    assert sorted(r.stdout.decode().split()) == ["k0", "k1", "k2", "k3"]
    assert b"cut" in r.stderr and b"torn" in r.stderr
    # the cut is made once; the store is clean afterwards
    r = run("kv", data, "ls")
    assert r.stderr == b""
    assert run("kv", data, "put", "k4", input=b"again").returncode == 0
    assert run("kv", data, "get", "k4").stdout == b"again"


def test_data_dir_not_creatable(run, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = run("kv", blocker / "data", "ls")
    assert r.returncode == 3
    assert b"cannot" in r.stderr
