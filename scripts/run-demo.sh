#!/usr/bin/env bash
# The main job on the embedded default: one node, no configuration. Mounts a
# DATA_DIR in the working tree (./demo-data) on ./mnt, copies a few files in,
# reads them back byte for byte, shows the store underneath, and leaves the
# mount up for you to use. Run it again to remount after an unmount.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/caskfs
data=${CASKFS_DEMO_DIR:-demo-data}
mnt=${CASKFS_DEMO_MNT:-mnt}

mkdir -p "$mnt"
if mountpoint -q "$mnt"; then
	echo "caskfs demo: $mnt is mounted already"
else
	"$bin" mount "$data" "$mnt"
fi
mkdir -p "$mnt/demo"
for f in README.md Makefile build/caskfs; do
	cp "$f" "$mnt/demo/"
	cmp -s "$f" "$mnt/demo/$(basename "$f")" || { echo "demo: $f read back differently" >&2; exit 1; }
	echo "  copied $f into $mnt/demo and read it back: identical"
done
ls -l "$mnt/demo"
cat <<MSG

caskfs is mounted: $data (the log and the namespace) on $mnt (the files).
  cp -a ~/Pictures $mnt/        copy photos in
  rsync -a DIR/ $mnt/DIR/       or sync a tree
  ls -l $mnt; df -h $mnt        look around
  fusermount3 -u $mnt           unmount (make run mounts it again)
MSG
