/*
 * acl - POSIX ACLs in their xattr form (system.posix_acl_access and
 * system.posix_acl_default, the Linux "version 2" encoding). The kernel
 * enforces ACLs itself (FUSE_CAP_POSIX_ACL); what it leaves to the
 * filesystem is keeping them in step with the mode: an access ACL sets the
 * mode's bits (the mask stands for the group bits), a chmod rewrites the
 * ACL's owner, mask (or group) and other entries, and a new inode inherits
 * its directory's default ACL, masked by the mode it was created with.
 * Format: docs/FORMAT.md ("POSIX ACLs").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "store/endian.h"

#define ACL_VERSION 2
#define ACL_HEAD 4
#define ACL_ENTRY 8

enum { ACL_USER_OBJ = 0x01, ACL_USER = 0x02, ACL_GROUP_OBJ = 0x04, ACL_GROUP = 0x08,
       ACL_MASK = 0x10, ACL_OTHER = 0x20 };

/* The entries' count, or -EINVAL when acl is not a well-formed ACL: version
 * 2, entries sorted by tag (and by id within USER and GROUP), one each of
 * owner, group and other, a mask exactly when there are named entries. */
static int acl_check(const uint8_t *acl, size_t len)
{
	size_t n;
	unsigned seen = 0, prev_tag = 0;
	uint32_t prev_id = 0;

	if (len < ACL_HEAD || (len - ACL_HEAD) % ACL_ENTRY || get_le32(acl) != ACL_VERSION)
		return -EINVAL;
	n = (len - ACL_HEAD) / ACL_ENTRY;
	if (n > META_XATTR_SIZE_MAX / ACL_ENTRY)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = acl + ACL_HEAD + i * ACL_ENTRY;
		unsigned tag = get_le16(e), perm = get_le16(e + 2);
		uint32_t id = get_le32(e + 4);

		if (perm & ~7u || tag < prev_tag)
			return -EINVAL;
		switch (tag) {
		case ACL_USER_OBJ:
		case ACL_GROUP_OBJ:
		case ACL_MASK:
		case ACL_OTHER:
			if (seen & tag)
				return -EINVAL;
			break;
		case ACL_USER:
		case ACL_GROUP:
			if (tag == prev_tag && id <= prev_id)
				return -EINVAL;
			break;
		default:
			return -EINVAL;
		}
		seen |= tag;
		prev_tag = tag;
		prev_id = id;
	}
	if ((seen & (ACL_USER_OBJ | ACL_GROUP_OBJ | ACL_OTHER)) !=
	    (ACL_USER_OBJ | ACL_GROUP_OBJ | ACL_OTHER))
		return -EINVAL;
	if ((seen & (ACL_USER | ACL_GROUP)) && !(seen & ACL_MASK))
		return -EINVAL;
	return (int)n;
}

int meta_acl_valid(const uint8_t *acl, size_t len)
{
	int n = acl_check(acl, len);

	return n < 0 ? n : 0;
}

/* The perm of the entry tagged tag (first one), or -1. */
static uint8_t *entry_of(uint8_t *acl, int n, unsigned tag)
{
	for (int i = 0; i < n; i++) {
		uint8_t *e = acl + ACL_HEAD + (size_t)i * ACL_ENTRY;
		if (get_le16(e) == tag)
			return e;
	}
	return NULL;
}

int meta_acl_mode(const uint8_t *acl, size_t len, uint32_t *mode, bool *equivalent)
{
	int n = acl_check(acl, len);
	uint8_t *a = (uint8_t *)acl; /* entry_of only reads here */
	const uint8_t *u, *g, *mk, *o;

	if (n < 0)
		return n;
	u = entry_of(a, n, ACL_USER_OBJ);
	g = entry_of(a, n, ACL_GROUP_OBJ);
	mk = entry_of(a, n, ACL_MASK);
	o = entry_of(a, n, ACL_OTHER);
	*mode = (*mode & ~0777u) | (uint32_t)get_le16(u + 2) << 6 |
		(uint32_t)get_le16((mk ? mk : g) + 2) << 3 | get_le16(o + 2);
	*equivalent = n == 3;
	return 0;
}

int meta_acl_chmod(uint8_t *acl, size_t len, uint32_t mode)
{
	int n = acl_check(acl, len);
	uint8_t *mk;

	if (n < 0)
		return n;
	put_le16(entry_of(acl, n, ACL_USER_OBJ) + 2, (uint16_t)((mode >> 6) & 7));
	mk = entry_of(acl, n, ACL_MASK);
	put_le16((mk ? mk : entry_of(acl, n, ACL_GROUP_OBJ)) + 2, (uint16_t)((mode >> 3) & 7));
	put_le16(entry_of(acl, n, ACL_OTHER) + 2, (uint16_t)(mode & 7));
	return 0;
}

int meta_acl_create(uint8_t *acl, size_t len, uint32_t *mode, bool *equivalent)
{
	int n = acl_check(acl, len);
	uint32_t m = *mode;
	uint8_t *g = NULL, *mk = NULL;
	bool extended = false;

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		uint8_t *e = acl + ACL_HEAD + (size_t)i * ACL_ENTRY;
		unsigned perm = get_le16(e + 2);

		switch (get_le16(e)) {
		case ACL_USER_OBJ:
			perm &= (m >> 6) & 7;
			m &= (perm << 6) | ~0700u;
			break;
		case ACL_USER:
		case ACL_GROUP:
			extended = true;
			break;
		case ACL_GROUP_OBJ:
			g = e;
			break;
		case ACL_OTHER:
			perm &= m & 7;
			m &= perm | ~0007u;
			break;
		case ACL_MASK:
			mk = e;
			extended = true;
			break;
		}
		put_le16(e + 2, (uint16_t)perm);
	}
	/* the mask, where there is one, stands for the group bits; else the group entry */
	uint8_t *grp = mk ? mk : g;
	unsigned perm = get_le16(grp + 2) & ((m >> 3) & 7);

	put_le16(grp + 2, (uint16_t)perm);
	m &= (perm << 3) | ~0070u;
	*mode = m;
	*equivalent = !extended;
	return 0;
}
