"""A short crash campaign (scripts/crash-campaign; run it long by hand): kill -9
of the daemon during a write workload, fsck, remount, and nothing whose fsync
returned is lost or damaged."""
import subprocess

from conftest import ROOT


def test_crash_campaign_short(caskfs_bin, tmp_path):
    r = subprocess.run([str(ROOT / "scripts" / "crash-campaign"), "--rounds", "6", "--seed", "7",
                        "--dir", str(tmp_path / "campaign"), "--binary", caskfs_bin,
                        "--max-delay", "0.8"],
                       capture_output=True, text=True, timeout=600)
    # the fixture-less mount is the script's own; make sure nothing stays mounted
    subprocess.run(["fusermount3", "-uz", str(tmp_path / "campaign" / "mnt")],
                   capture_output=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "fsck clean 6/6, rounds with problems: 0" in r.stdout
