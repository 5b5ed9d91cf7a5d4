/*
 * ops_dir - directory listings: readdir, and readdirplus, whose entries carry
 * attributes and count as lookups the kernel holds. Positions 1 and 2 are
 * "." and ".."; names start at 4 and a position is what meta_readdir hands
 * back, so a listing resumes where the kernel's buffer ran out.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ops_i.h"

struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t size, used;
	bool plus; /* readdirplus: entries carry attributes and count as lookups */
};

static int add_entry(void *arg, const char *name, uint64_t ino, uint32_t type, uint64_t next)
{
	struct dirbuf *d = arg;
	struct stat st;
	size_t n;

	memset(&st, 0, sizeof(st));
	st.st_ino = ino;
	st.st_mode = type;
	if (!d->plus) {
		n = fuse_add_direntry(d->req, d->buf + d->used, d->size - d->used, name, &st,
				      (off_t)next);
	} else {
		struct fs *fs = fs_of(d->req);
		struct fuse_entry_param e;
		struct meta_inode in = { 0 };

		memset(&e, 0, sizeof(e));
		e.attr = st;
		/* "." and ".." carry no inode: the kernel takes no lookup for them */
		if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
			if (meta_getattr(fs->meta, ino, false, &in) != 0)
				return 0; /* removed meanwhile: leave it out */
			fs_ops_fill_stat(fs, &in, &e.attr);
			meta_inode_release(&in);
			e.ino = ino;
			e.attr_timeout = e.entry_timeout = fs->timeout;
		}
		n = fuse_add_direntry_plus(d->req, d->buf + d->used, d->size - d->used, name, &e,
					   (off_t)next);
	}
	if (n > d->size - d->used)
		return 1;
	d->used += n;
	if (d->plus && strcmp(name, ".") != 0 && strcmp(name, "..") != 0)
		fs_ops_count_lookup(fs_of(d->req),
				    ino); /* the kernel takes each entry it is sent */
	return 0;
}

static void list_dir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct dirbuf d;
	int rc = 0;

	if (fs_health_ino(ino)) {
		fs_health_readdir(req, ino, size, off, plus);
		return;
	}
	d = (struct dirbuf){ req, malloc(size ? size : 1), size, 0, plus };
	if (!d.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* positions 1 and 2 are "." and ".."; names start at 4 (meta_name_pos) */
	if (off < 1 && add_entry(&d, ".", ino, S_IFDIR, 1))
		goto send;
	if (off < 2 && add_entry(&d, "..", ino, S_IFDIR, 2))
		goto send;
	rc = meta_readdir(fs_of(req)->meta, ino, off < 3 ? 3 : (uint64_t)off, add_entry, &d);
send:
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
}

void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	/* the kernel keeps listings; it drops them itself when this mount changes
	 * the directory */
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	(void)fi;
	list_dir(req, ino, size, off, false);
}

void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	list_dir(req, ino, size, off, true);
}
