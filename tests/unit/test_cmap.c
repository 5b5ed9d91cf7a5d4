/*
 * test_cmap - the cluster map (store/node/cmap.h): building and editing it,
 * the merge rule gossip relies on, its encoding against a checked-in golden
 * file (tests/data/cluster.map, with the owners it gives a few buckets: both
 * are part of the protocol), every truncation and a flipped byte refused,
 * and DATA_DIR/cluster.map saved and read back.
 * `CASKFS_WRITE_GOLDEN=1 test_cmap` writes the golden file again.
 */
#include <errno.h>
#include <fcntl.h>

#include "testutil.h"

#include "store/endian.h"
#include "store/node/cluster_i.h"
#include "store/node/cmap.h"
#include "store/xxh_i.h"

#define GOLDEN CASKFS_SRCDIR "/tests/data/cluster.map"
/* member indexes of the owners of buckets 0, 1 and 65535 under the golden map */
#define GOLDEN_OWNERS "104 103 034 "

static struct cmap *new_map(void)
{
	struct cmap *m = malloc(sizeof(*m));
	assert_non_null(m);
	cmap_init(m);
	return m;
}

/* The map of the golden file: five nodes agreed, a sixth joining, one leaving. */
static void golden_map(struct cmap *m)
{
	char err[200];

	assert_int_equal(cmap_bootstrap(m, "10.0.0.1:7700", 1,
					"10.0.0.2:7700,10.0.0.3:7700,10.0.0.4:7700,10.0.0.5:7700",
					CLUSTER_MAX_NODES, err, sizeof(err)),
			 0);
	cmap_promote(m);
	for (int i = 0; i < m->count; i++)
		m->node[i].id = (uint32_t)i + 1;
	assert_int_equal(cmap_add(m, "10.0.0.6:7700", 6, CLUSTER_MAX_NODES), 0);
	assert_int_equal(cmap_remove(m, "10.0.0.2:7700"), 0);
}

static void test_edits(void **state)
{
	struct cmap *m = new_map();
	char err[200];

	(void)state;
	assert_int_equal(cmap_bootstrap(m, "b:1", 7, "a:1,,c:1,a:1", 8, err, sizeof(err)), 0);
	assert_int_equal(m->count, 3); /* sorted, the repeat dropped */
	assert_string_equal(m->node[0].addr, "a:1");
	assert_int_equal(m->node[1].id, 7);
	assert_true(m->epoch == 0 && m->cluster_id == 0 && cmap_settled(m));
	assert_int_equal(cmap_bootstrap(m, "b:1", 7, "a:1,nope", 8, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "nope"));
	assert_int_equal(cmap_bootstrap(m, "b:1", 7, "a:1,c:1", 2, err, sizeof(err)), -ENOSPC);
	assert_int_equal(cmap_bootstrap(m, "b:1", 7, "a:1,c:1", 8, err, sizeof(err)), 0);
	cmap_promote(m);
	assert_true(m->epoch == 1 && m->cluster_id != 0);
	uint64_t id = m->cluster_id;
	assert_int_equal(cmap_add(m, "a:1", 0, 8), -EEXIST);
	assert_int_equal(cmap_add(m, "d:1", 4, 3), -ENOSPC);
	assert_int_equal(cmap_add(m, "bad", 4, 8), -EINVAL);
	assert_int_equal(cmap_add(m, "d:1", 4, 8), 0);
	assert_true(m->epoch == 2 && !cmap_settled(m));
	assert_int_equal(m->node[cmap_find(m, "d:1")].flags, CMAP_MEMBER);
	assert_int_equal(cmap_remove(m, "zz:1"), -ENOENT);
	assert_int_equal(cmap_remove(m, "a:1"), 0);
	assert_int_equal(m->node[cmap_find(m, "a:1")].flags, CMAP_PREV); /* leaving */
	assert_int_equal(cmap_remove(m, "d:1"), 0);			 /* joined, never owned */
	assert_int_equal(cmap_find(m, "d:1"), -1);
	assert_int_equal(cmap_count(m, CMAP_MEMBER), 2);
	cmap_settle(m);
	assert_true(m->epoch == 5 && cmap_settled(m) && m->cluster_id == id);
	assert_int_equal(m->count, 2);
	assert_int_equal(cmap_remove(m, "b:1"), 0);
	cmap_settle(m);
	assert_int_equal(cmap_remove(m, "c:1"), -EINVAL); /* the last member */
	free(m);
}

static void test_merge(void **state)
{
	struct cmap *a = new_map(), *b = new_map(), *c = new_map();
	char err[200];

	(void)state;
	assert_int_equal(cmap_bootstrap(a, "a:1", 1, "b:1,c:1", 8, err, sizeof(err)), 0);
	*b = *a;
	/* provisional maps never replace another */
	assert_int_equal(cmap_merge(a, b), 0);
	cmap_promote(b);
	assert_int_equal(cmap_merge(a, b), 1); /* the agreed map replaces the provisional */
	assert_int_equal(a->epoch, 1);
	/* the same map from a peer fills in ids, without a new epoch */
	*c = *a;
	c->node[cmap_find(c, "b:1")].id = 2;
	assert_int_equal(cmap_merge(a, c), 1);
	assert_int_equal(a->node[cmap_find(a, "b:1")].id, 2);
	assert_int_equal(cmap_merge(a, c), 0);
	/* higher epoch wins, lower is ignored */
	assert_int_equal(cmap_add(c, "d:1", 4, 8), 0);
	assert_int_equal(cmap_merge(a, c), 1);
	assert_int_equal(cmap_merge(c, b), 0);
	/* two changes made at once in one epoch: the higher digest, everywhere */
	*b = *a;
	*c = *a;
	assert_int_equal(cmap_add(b, "e:1", 5, 8), 0);
	assert_int_equal(cmap_remove(c, "a:1"), 0);
	struct cmap *x = new_map(), *y = new_map();
	*x = *b;
	*y = *c;
	int rx = cmap_merge(x, c), ry = cmap_merge(y, b);
	assert_true(rx + ry == 1);
	assert_int_equal(cmap_digest(x), cmap_digest(y));
	/* another cluster's map is refused */
	*x = *a;
	x->cluster_id ^= 1;
	x->epoch += 10;
	assert_int_equal(cmap_merge(a, x), -EXDEV);
	free(a);
	free(b);
	free(c);
	free(x);
	free(y);
}

static void test_golden(void **state)
{
	struct cmap *m = new_map(), *d = new_map();
	uint8_t *enc = malloc(CMAP_WIRE_MAX), buf[CMAP_WIRE_MAX];
	size_t len;

	(void)state;
	golden_map(m);
	len = cmap_encode(m, enc, CMAP_WIRE_MAX);
	assert_true(len > 0);
	assert_int_equal(cmap_encode(m, enc, len - 1), 0);
	if (getenv("CASKFS_WRITE_GOLDEN")) {
		FILE *f = fopen(GOLDEN, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(enc, 1, len, f), len);
		fclose(f);
	}
	FILE *f = fopen(GOLDEN, "rb");
	assert_non_null(f);
	size_t glen = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	assert_int_equal(glen, len);
	assert_memory_equal(buf, enc, len);
	/* field by field, as docs/FORMAT.md describes them */
	assert_memory_equal(buf, "CASKMAP\0", 8);
	assert_int_equal(get_le32(buf + 8), 1);
	assert_int_equal(get_le32(buf + 12), 6);
	assert_int_equal(get_le64(buf + 16), 3);
	assert_int_equal(get_le64(buf + 24), m->cluster_id);
	assert_int_equal(get_le32(buf + 32), 1);
	assert_int_equal(buf[36], CMAP_FLAGS);
	assert_int_equal(buf[37], 13);
	assert_memory_equal(buf + 38, "10.0.0.1:7700", 13);
	assert_int_equal(buf[32 + 19 + 4], CMAP_PREV); /* 10.0.0.2 leaving */
	assert_int_equal(get_le64(buf + len - 8), XXH3_64bits(buf, len - 8));
	assert_int_equal(cmap_decode(buf, glen, d), 0);
	assert_int_equal(cmap_digest(d), cmap_digest(m));
	assert_int_equal(d->node[5].flags, CMAP_MEMBER); /* 10.0.0.6 joining */

	/* the owners of a few buckets under it: placement is protocol too */
	uint64_t seeds[6];
	int rank[3], nseeds = 0;
	for (int i = 0; i < d->count; i++)
		if (d->node[i].flags & CMAP_MEMBER)
			seeds[nseeds++] = cluster_seed(d->node[i].addr);
	assert_int_equal(nseeds, 5);
	char got[64] = "";
	uint32_t buckets[] = { 0, 1, 65535 };
	for (int b = 0; b < 3; b++) {
		cluster_rank(seeds, nseeds, 3, buckets[b], rank);
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%d%d%d ", rank[0], rank[1],
			 rank[2]);
	}
	printf("golden owners (member indexes) of buckets 0, 1, 65535: %s\n", got);
	assert_string_equal(got, GOLDEN_OWNERS);
	free(m);
	free(d);
	free(enc);
}

static void test_decode_rejects(void **state)
{
	struct cmap *m = new_map(), *d = new_map();
	uint8_t enc[CMAP_WIRE_MAX];
	size_t len;

	(void)state;
	golden_map(m);
	len = cmap_encode(m, enc, sizeof(enc));
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(cmap_decode(enc, cut, d), -EBADMSG);
	for (size_t i = 0; i < len; i++) {
		enc[i] ^= 0x10;
		assert_int_equal(cmap_decode(enc, len, d), -EBADMSG);
		enc[i] ^= 0x10;
	}
	/* well-checksummed but wrong: unsorted entries, unknown flags, a bad address */
	struct {
		size_t off;
		uint8_t val;
	} bad[] = { { 38 + 8, '9' }, { 36, 0x04 }, { 36, 0 }, { 38 + 3, ' ' }, { 37, 200 } };
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		uint8_t save = enc[bad[k].off];
		enc[bad[k].off] = bad[k].val;
		put_le64(enc + len - 8, XXH3_64bits(enc, len - 8));
		assert_int_equal(cmap_decode(enc, len, d), -EBADMSG);
		enc[bad[k].off] = save;
	}
	put_le64(enc + len - 8, XXH3_64bits(enc, len - 8));
	assert_int_equal(cmap_decode(enc, len, d), 0);
	free(m);
	free(d);
}

static void test_file(void **state)
{
	char *dir = tu_tmpdir(), path[4200];
	struct cmap *m = new_map(), *d = new_map();
	struct cmap_local l = { .replicas = 3, .done_epoch = 2, .work_epoch = 3 }, dl;

	(void)state;
	golden_map(m);
	snprintf(l.self, sizeof(l.self), "10.0.0.6:7700");
	l.pulled[0] = 0x05;
	assert_int_equal(cmap_file_load(dir, d, &dl), -ENOENT);
	assert_int_equal(cmap_file_save(dir, m, &l), 0);
	assert_int_equal(cmap_file_load(dir, d, &dl), 0);
	assert_int_equal(cmap_digest(d), cmap_digest(m));
	assert_string_equal(dl.self, "10.0.0.6:7700");
	assert_true(dl.replicas == 3 && dl.done_epoch == 2 && dl.work_epoch == 3 &&
		    dl.pulled[0] == 0x05);
	/* a damaged file is refused, not half read */
	snprintf(path, sizeof(path), "%s/cluster.map", dir);
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, 70), 1);
	close(fd);
	assert_int_equal(cmap_file_load(dir, d, &dl), -EBADMSG);
	free(m);
	free(d);
	tu_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edits),  cmocka_unit_test(test_merge),
		cmocka_unit_test(test_golden), cmocka_unit_test(test_decode_rejects),
		cmocka_unit_test(test_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
