/*
 * test_acl - POSIX ACLs in xattr form: malformed ones are refused, an access
 * ACL gives the mode (the mask stands for the group bits), a chmod rewrites
 * owner, mask and other, and inheritance masks a default ACL by the create
 * mode as the kernel's posix_acl_create does.
 */
#include <errno.h>

#include "testutil.h"
#include "meta/meta.h"
#include "store/endian.h"

enum { UO = 0x01, U = 0x02, GO = 0x04, G = 0x08, MASK = 0x10, OTH = 0x20 };

/* Builds an ACL from (tag, perm, id) triples into buf; returns its length. */
static size_t acl(uint8_t *buf, int n, const unsigned (*e)[3])
{
	put_le32(buf, 2);
	for (int i = 0; i < n; i++) {
		put_le16(buf + 4 + 8 * i, (uint16_t)e[i][0]);
		put_le16(buf + 6 + 8 * i, (uint16_t)e[i][1]);
		put_le32(buf + 8 + 8 * i, e[i][2]);
	}
	return 4 + 8 * (size_t)n;
}

static unsigned perm_of(const uint8_t *buf, size_t len, unsigned tag)
{
	for (size_t off = 4; off < len; off += 8)
		if (get_le16(buf + off) == tag)
			return get_le16(buf + off + 2);
	fail_msg("no entry with tag %#x", tag);
	return 0;
}

static void test_malformed(void **state)
{
	uint8_t b[64];
	const unsigned no_other[][3] = { { UO, 7, 0 }, { GO, 5, 0 } };
	const unsigned no_mask[][3] = { { UO, 7, 0 }, { U, 5, 65534 }, { GO, 5, 0 }, { OTH, 0, 0 } };
	const unsigned unsorted[][3] = { { GO, 7, 0 }, { UO, 5, 0 }, { OTH, 0, 0 } };
	const unsigned bad_perm[][3] = { { UO, 8, 0 }, { GO, 5, 0 }, { OTH, 0, 0 } };
	const unsigned dup_user[][3] = { { UO, 7, 0 }, { U, 5, 9 }, { U, 5, 9 }, { GO, 5, 0 },
					 { MASK, 7, 0 }, { OTH, 0, 0 } };

	(void)state;
	assert_int_equal(meta_acl_valid(b, acl(b, 2, no_other)), -EINVAL);
	assert_int_equal(meta_acl_valid(b, acl(b, 4, no_mask)), -EINVAL);
	assert_int_equal(meta_acl_valid(b, acl(b, 3, unsorted)), -EINVAL);
	assert_int_equal(meta_acl_valid(b, acl(b, 3, bad_perm)), -EINVAL);
	assert_int_equal(meta_acl_valid(b, acl(b, 6, dup_user)), -EINVAL);
	assert_int_equal(meta_acl_valid(b, 3), -EINVAL);
	assert_int_equal(meta_acl_valid(b, acl(b, 6, dup_user) - 1), -EINVAL);
	put_le32(b, 1);
	assert_int_equal(meta_acl_valid(b, 4 + 24), -EINVAL);
}

static void test_mode_and_chmod(void **state)
{
	uint8_t b[64];
	/* setfacl -m u:nobody:rx on a 0640 file: the mask becomes r-x */
	const unsigned e[][3] = { { UO, 6, 0 }, { U, 5, 65534 }, { GO, 4, 0 }, { MASK, 5, 0 },
				  { OTH, 0, 0 } };
	size_t len = acl(b, 5, e);
	uint32_t mode = 0100640;
	bool eq = true;

	(void)state;
	assert_int_equal(meta_acl_mode(b, len, &mode, &eq), 0);
	assert_int_equal(mode, 0100650);
	assert_false(eq);
	/* chmod 750: owner rwx, the mask (not the group entry) r-x, other none */
	assert_int_equal(meta_acl_chmod(b, len, 0750), 0);
	assert_int_equal(perm_of(b, len, UO), 7);
	assert_int_equal(perm_of(b, len, MASK), 5);
	assert_int_equal(perm_of(b, len, GO), 4);
	assert_int_equal(perm_of(b, len, OTH), 0);
	/* a minimal ACL is the mode itself */
	const unsigned min[][3] = { { UO, 7, 0 }, { GO, 5, 0 }, { OTH, 1, 0 } };
	len = acl(b, 3, min);
	mode = 040000;
	assert_int_equal(meta_acl_mode(b, len, &mode, &eq), 0);
	assert_int_equal(mode, 040751);
	assert_true(eq);
	assert_int_equal(meta_acl_chmod(b, len, 0604), 0);
	assert_int_equal(perm_of(b, len, GO), 0);
}

static void test_create(void **state)
{
	uint8_t b[64];
	/* a directory's default ACL: u::rwx u:nobody:rx g::rx m::rwx o::- */
	const unsigned d[][3] = { { UO, 7, 0 }, { U, 5, 65534 }, { GO, 5, 0 }, { MASK, 7, 0 },
				  { OTH, 0, 0 } };
	size_t len = acl(b, 5, d);
	uint32_t mode = 0100666; /* open(O_CREAT, 0666): no umask with a default ACL */
	bool eq = true;

	(void)state;
	assert_int_equal(meta_acl_create(b, len, &mode, &eq), 0);
	assert_false(eq);
	assert_int_equal(mode, 0100660); /* group bits = mask & mode = rw- */
	assert_int_equal(perm_of(b, len, UO), 6);
	assert_int_equal(perm_of(b, len, MASK), 6);
	assert_int_equal(perm_of(b, len, GO), 5); /* masked by the mask, not changed */
	assert_int_equal(perm_of(b, len, OTH), 0);
	/* a minimal default ACL: the group entry takes the group bits */
	const unsigned m[][3] = { { UO, 7, 0 }, { GO, 5, 0 }, { OTH, 5, 0 } };
	len = acl(b, 3, m);
	mode = 040777;
	assert_int_equal(meta_acl_create(b, len, &mode, &eq), 0);
	assert_true(eq);
	assert_int_equal(mode, 040755);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_mode_and_chmod),
		cmocka_unit_test(test_create),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
