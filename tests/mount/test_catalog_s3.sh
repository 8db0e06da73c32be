#!/usr/bin/env bash
# Catalog mode over S3 (tests/lib/s3server.py, path style through
# -o s3_endpoint): discovery by ListObjectsV2 with pagination (pages of
# one entry) in the factory layout (view only, per arch) and in the seed
# layout; listing reads no artifact byte; each arch mounts its own
# artifact, equal to GNU tar's extraction; the factory's own modulefile
# stays visible.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
require_tool getfattr

cat=$SFFS_BUILD/catalog
"$SFFS_SRC/scripts/make-catalog.sh" "$(fixture_dir)" "$cat" "$SFFS_INDEX" >/dev/null

stat_of() {
	getfattr --absolute-names --only-values -n user.sffs.stats "$1" |
		tr ' ' '\n' | sed -n "s/^$2=//p"
}

step factory
s3_start "$cat/factory" bkt 1
for arch in amd64 arm64; do
	mnt=$TEST_TMP/sf-$arch
	sffs_mount s3://bkt/ "$mnt" -o layout=factory,arch=$arch,s3_endpoint=$S3_URL \
		-o cache_dir="$TEST_TMP/cache-$arch"
	[ "$(ls "$mnt" | tr '\n' ' ')" = "25.11 latest modules " ] || fail "ls: $(ls "$mnt")"
	[ "$(ls "$mnt/25.11")" = noble ] || fail "ls 25.11: $(ls "$mnt/25.11")"
	[ "$(s3_requests '^GET /bkt/[^ ?]+ ')" = 0 ] ||
		fail "listing read artifact bytes: $(grep -E '^GET /bkt/[^ ?]+ ' "$S3_LOG")"
	[ "$(s3_requests 'continuation-token=')" -ge 1 ] || fail "no paginated listing"
	grep -qx "25.11-noble-$arch" "$mnt/25.11/noble/view/share/sffs-fixture/ARTIFACT" ||
		fail "$arch: marker $(cat "$mnt/25.11/noble/view/share/sffs-fixture/ARTIFACT")"
	"$SFFS_SRC/tests/lib/compare-tree.sh" "$cat/extract/factory-25.11-noble-$arch" \
		"$mnt/25.11/noble" || fail "$arch differs from GNU tar's extraction"
	[ -f "$mnt/25.11/noble/view/assets/modules/slurm/25.11.lua" ] ||
		fail "the factory's own modulefile is not visible"
	grep -q "SLURM_ROOT" "$mnt/modules/slurm/25.11-noble.lua" || fail "no generated module"
	other=$([ $arch = amd64 ] && echo arm64 || echo amd64)
	[ "$(s3_requests "^GET /bkt/noble/25.11/$other/")" = 0 ] || fail "$arch mount read $other"
	log "$arch: $(getfattr --absolute-names --only-values -n user.sffs.stats "$mnt")"
	sffs_unmount "$mnt"
	: >"$S3_LOG"
done

step seed
s3_start "$cat/seed" seed 2
mnt=$TEST_TMP/sf-seed
sffs_mount s3://seed/ "$mnt" -o s3_endpoint=$S3_URL,cache_dir="$TEST_TMP/cache-seed"
[ "$(ls "$mnt" | tr '\n' ' ')" = "24.11 25.11 latest modules " ] || fail "ls: $(ls "$mnt")"
[ "$(ls "$mnt/24.11" | tr '\n' ' ')" = "jammy noble " ] || fail "ls 24.11: $(ls "$mnt/24.11")"
[ "$(ls "$mnt/modules/slurm" | wc -l)" = 4 ] || fail "modules: $(ls "$mnt/modules/slurm")"
[ "$(stat_of "$mnt" known)" = 4 ] || fail "known: $(stat_of "$mnt" known)"
[ "$(s3_requests '^GET /seed/[^ ?]+ ')" = 0 ] || fail "listing read artifact bytes"
"$SFFS_SRC/tests/lib/compare-tree.sh" "$cat/extract/seed-24.11-jammy" "$mnt/24.11/jammy" ||
	fail "24.11/jammy (no published index) differs"
log "seed over S3: $(getfattr --absolute-names --only-values -n user.sffs.stats "$mnt")"
