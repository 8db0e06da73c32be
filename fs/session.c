/* SPDX-License-Identifier: MIT */
/*
 * session.c - the kernel channel, with parallel directory operations.
 *
 * Without FUSE_PARALLEL_DIROPS in the INIT reply the kernel holds a
 * directory's lock across every lookup in it: lookups waiting for an
 * attach then queue in the kernel, one after another, where neither a
 * deadline nor a FUSE interrupt reaches them (a Ctrl-C'd `ls` waits for
 * the lookups ahead of it). sffs asks for the flag (ops.c, init), but
 * libfuse 3.14 - Debian 12's - never passes it on to the kernel (libfuse
 * commit c9905341, in 3.16). So the channel's I/O is libfuse's own
 * read/writev through fuse_session_custom_io, which notes the INIT
 * request's unique id when the kernel offers the flag and sets it in the
 * matching reply, before libfuse's bytes reach the kernel. Every other
 * message passes through untouched. A libfuse that already sets it is
 * unaffected (the bit is set twice).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/fuse.h>

#include "fs.h"

/* The flags word of fuse_init_in and fuse_init_out: after major, minor
 * and max_readahead in both (the protocol's oldest layout). */
#define INIT_FLAGS_OFF 12u

static ssize_t chan_read(int fd, void *buf, size_t len, void *userdata)
{
	struct fs *fs = userdata;
	const unsigned char *p = buf;
	struct fuse_in_header h;
	uint32_t flags;
	ssize_t n = read(fd, buf, len);

	if (n < (ssize_t)(sizeof(h) + INIT_FLAGS_OFF + sizeof(flags)))
		return n;
	memcpy(&h, p, sizeof(h));
	if (h.opcode != FUSE_INIT)
		return n;
	memcpy(&flags, p + sizeof(h) + INIT_FLAGS_OFF, sizeof(flags));
	if (flags & FUSE_PARALLEL_DIROPS)
		atomic_store(&fs->init_unique, h.unique);
	return n;
}

static ssize_t chan_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct fs *fs = userdata;
	uint64_t want = atomic_load(&fs->init_unique);
	struct fuse_out_header h;
	uint32_t flags;

	if (want && count >= 2 && iov[0].iov_len >= sizeof(h) &&
	    iov[1].iov_len >= INIT_FLAGS_OFF + sizeof(flags)) {
		memcpy(&h, iov[0].iov_base, sizeof(h));
		if (h.unique == want && h.error == 0) {
			unsigned char *arg = iov[1].iov_base;

			memcpy(&flags, arg + INIT_FLAGS_OFF, sizeof(flags));
			flags |= FUSE_PARALLEL_DIROPS;
			memcpy(arg + INIT_FLAGS_OFF, &flags, sizeof(flags));
			atomic_store(&fs->init_unique, 0);
			atomic_store(&fs->parallel_dirops, true);
		}
	}
	return writev(fd, iov, count);
}

int fs_session_channel(struct fs *fs, struct fuse_session *se)
{
	static const struct fuse_custom_io io = {
	    .read = chan_read,
	    .writev = chan_writev,
	};
	int fd = fuse_session_fd(se);

	if (fd < 0)
		return -EBADF;
	atomic_init(&fs->init_unique, 0);
	atomic_init(&fs->parallel_dirops, false);
	return fuse_session_custom_io(se, &io, fd);
}
