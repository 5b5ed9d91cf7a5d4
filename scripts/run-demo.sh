#!/usr/bin/env bash
# The main job on the embedded default: one node, no configuration, a DATA_DIR
# in the working tree (./demo-data). Stores a few files with `caskfs kv`, reads
# them back byte for byte, lists and describes them, then deletes one.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/caskfs
data=${CASKFS_DEMO_DIR:-demo-data}

echo "caskfs demo: DATA_DIR $data"
for f in README.md Makefile build/caskfs; do
	"$bin" kv "$data" put "demo/$f" "$f"
	"$bin" kv "$data" get "demo/$f" | cmp -s - "$f" || { echo "demo: $f read back differently" >&2; exit 1; }
	echo "  put and read back demo/$f ($(stat -c %s "$f") bytes): identical"
done
echo "keys under demo/:"
"$bin" kv "$data" ls demo/ | sed 's/^/  /'
echo "one object:"
"$bin" kv "$data" stat demo/README.md | sed 's/^/  /'
"$bin" kv "$data" del demo/Makefile
echo "after deleting demo/Makefile, the store:"
"$bin" kv "$data" stat | sed 's/^/  /'
echo "Try: $bin kv $data get demo/README.md | head"
