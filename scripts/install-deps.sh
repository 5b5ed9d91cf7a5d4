#!/usr/bin/env bash
# Installs every Debian package that building and testing caskfs needs.
# Idempotent: when everything is present it does nothing (and needs no network);
# otherwise it runs `apt-get update` once, then installs what is missing.
set -euo pipefail

PKGS=(
	build-essential pkg-config clang
	libxxhash-dev libzstd-dev liblmdb-dev lmdb-utils
	libfuse3-dev fuse3 liburing-dev
	libcmocka-dev
	python3 python3-pytest
	rsync nginx-light wrk acl util-linux attr iproute2
	libsodium-dev libssl-dev openssl memcached libmemcached-tools python3-pymemcache
	librocksdb-dev
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
