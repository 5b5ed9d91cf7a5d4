"""/.caskfs/: the mount's health as read-only files, found by name and never
listed, fresh at every read, readable by any user. docs/USAGE.md."""
import errno
import json
import os
import subprocess

import pytest


def heads(text):
    """The first word of each line: what a status report is made of."""
    return [line.split()[0] for line in text.splitlines() if line and not line[0].isspace()]


def test_health_files(mount, public_mnt, caskfs_bin):
    m = mount(mnt=public_mnt)
    p = m.path
    (p / "f").write_text("x")
    assert ".caskfs" not in os.listdir(p)
    r = subprocess.run(["ls", "-a", str(p)], capture_output=True, text=True, check=True)
    assert ".caskfs" not in r.stdout.split()
    h = p / ".caskfs"
    assert sorted(os.listdir(h)) == ["conflicts", "peers", "status", "status.json"]
    assert os.stat(h).st_mode & 0o7777 == 0o555
    assert all(os.stat(h / n).st_mode & 0o7777 == 0o444 for n in os.listdir(h))
    status = (h / "status").read_text()
    want = subprocess.run([caskfs_bin, "status", str(m.data)], capture_output=True,
                          text=True, check=True).stdout
    assert status.splitlines()[0] == want.splitlines()[0]
    assert heads(status) == heads(want)
    # fresh at every read: the mount's request counts move between two reads
    assert (h / "status").read_text() != status
    js = json.loads((h / "status.json").read_text())
    assert js["stats"]["caskfs_meta_inodes"] >= 2
    assert (h / "peers").read_text().split()[1] == "self"
    # another user reads it (allow_other, default_permissions, mode 0444)
    r = subprocess.run(["cat", str(h / "status")], capture_output=True, text=True,
                       user=65534, group=65534)
    assert r.returncode == 0 and r.stdout.startswith("caskfs status:"), r.stderr
    # read-only, and the name is taken
    for call, err in ((lambda: open(h / "status", "w"), (errno.EACCES, errno.EPERM)),
                      (lambda: os.mkdir(p / ".caskfs"), (errno.EEXIST,)),
                      (lambda: (h / "new").write_text("x"), (errno.EACCES, errno.EEXIST,
                                                             errno.EPERM)),
                      (lambda: os.rename(p / "f", h / "f"), (errno.EPERM, errno.EXDEV)),
                      (lambda: os.setxattr(h / "status", "user.x", b"1"),
                       (errno.EPERM, errno.EACCES))):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno in err
    with pytest.raises(FileNotFoundError):
        (h / "nothing").read_text()
