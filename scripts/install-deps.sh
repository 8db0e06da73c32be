#!/usr/bin/env bash
# Install the Debian 12 packages sffs needs to build, test and benchmark.
#
# Idempotent: packages already installed (dpkg -s) are skipped, and
# `apt-get update` runs only when something is missing. Works as root or,
# otherwise, through sudo.
#
# Slurm and munge are deliberately NOT installed: the mount tests must prove
# that Slurm runs from the mounted tarball alone. The fixture script fetches
# their .deb files with `apt-get download`, which installs nothing.
# nginx is installed for its binary only; the tests start their own nginx
# processes with their own configuration on free loopback ports and never
# depend on a system nginx service.
set -euo pipefail

PACKAGES=(
	# build
	build-essential cmake pkg-config clang llvm libclang-rt-14-dev cppcheck
	# libraries
	libfuse3-dev libcurl4-openssl-dev zlib1g-dev libzstd-dev
	libssl-dev uthash-dev
	# ListObjectsV2 listings (catalog discovery on S3)
	libexpat1-dev
	# OpenPGP signatures (trust/); gpg makes the tests' throwaway keys
	librnp-dev gnupg
	# Spack buildcache manifests and indexes (JSON)
	libjson-c-dev
	# a Spack package's .spack/binary_distribution (YAML)
	libyaml-dev
	# runtime, tests and benchmarks
	fuse3 nginx-light lmod patchelf pigz zstd squashfs-tools squashfuse
	httpdirfs python3 curl psmisc procps tar gzip xz-utils dpkg-dev attr
	# a forward proxy for the failover tests (proxy groups)
	squid
	# tests/lib/reloc-expect.py reads binary_distribution (YAML) on its own
	python3-yaml
	# test_fetch and test_tls make their certificates with it
	openssl
	# `man sffs` in the install test
	man-db
)

missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	if [ "$status" != "installed" ]; then
		missing+=("$pkg")
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "install-deps: all ${#PACKAGES[@]} packages already installed"
	exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "install-deps: not root and sudo not found; need: ${missing[*]}" >&2
		exit 1
	fi
	SUDO=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
