#!/usr/bin/env bash
# compare-tree.sh MOUNT REFERENCE
# Fails unless the two trees hold the same paths with the same type,
# permission bits (setuid/setgid excepted: sffs never serves them), size,
# link count, symlink target, file mtime and SHA-256 of every regular file.
set -euo pipefail
mnt=$1
ref=$2

manifest() { # root
	(
		cd "$1"
		# type, perms, links, size, target; files also mtime + digest
		find . -mindepth 1 \( -type f -printf '%y %m %n %s %Ts %P\n' \) -o \
			\( ! -type f -printf '%y %m %n - - %P -> %l\n' \) |
			awk '{ m = $2
			       if (length(m) == 4) # drop setuid/setgid, keep sticky
			               m = (substr(m, 1, 1) % 2 ? "1" : "") substr(m, 2)
			       $2 = m; print }' |
			LC_ALL=C sort -k6
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
	)
}

a=$(mktemp)
b=$(mktemp)
trap 'rm -f "$a" "$b"' EXIT
manifest "$mnt" >"$a"
manifest "$ref" >"$b"
if ! diff -u "$b" "$a" >&2; then
	echo "compare-tree: $mnt differs from $ref (- reference, + mount)" >&2
	exit 1
fi
echo "compare-tree: $(grep -c . "$a") lines identical ($(find "$ref" -mindepth 1 | wc -l) paths)"
