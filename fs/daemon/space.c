/*
 * space - the room the mount offers: the free space of the disk under
 * DATA_DIR, less what files hold reserved by fallocate and have not written
 * yet (meta_reserved), so a reservation moves statfs's free count as it
 * does on ext4, and a second one that would not fit is refused.
 */
#include <errno.h>
#include <sys/statvfs.h>

#include "daemon_i.h"

int fs_space_stat(struct fs *fs, struct statvfs *sv)
{
	uint64_t reserved = 0, blocks;

	if (statvfs(fs->data_dir, sv) < 0)
		return -errno;
	if (meta_reserved(fs->meta, &reserved) == 0 && sv->f_frsize) {
		blocks = reserved / sv->f_frsize;
		sv->f_bfree = sv->f_bfree > blocks ? sv->f_bfree - blocks : 0;
		sv->f_bavail = sv->f_bavail > blocks ? sv->f_bavail - blocks : 0;
	}
	sv->f_namemax = META_NAME_MAX;
	return 0;
}

int fs_space_avail(struct fs *fs, uint64_t *bytes)
{
	struct statvfs sv;
	int rc = fs_space_stat(fs, &sv);

	if (rc == 0)
		*bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	return rc;
}
