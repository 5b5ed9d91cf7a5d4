/*
 * record - the namespace's LMDB keys and values, encoded field by field in
 * little-endian (keys big-endian, so LMDB orders them numerically). Decoders
 * take the bytes LMDB returns as untrusted: every length is checked.
 * Layout: docs/FORMAT.md ("Namespace").
 */
#ifndef CASKFS_META_RECORD_I_H
#define CASKFS_META_RECORD_I_H

#include <stddef.h>
#include <stdint.h>

#include "meta.h"

#define META_REC_VERSION 1
#define META_REC_DELETED 0x01
/* Every replicated value begins with this head: u8 record version, u8 flags,
 * 2 bytes of its own (zero but in an entry), le32 node, le64 stamp. */
#define META_HEAD_SIZE 16
/* The inode record: version 2 (a sparse chunk map) is written; version 1 (a
 * dense grid) is still read. */
#define META_INODE_VERSION 2
#define META_INODE_FIXED 92    /* bytes before the symlink target */
#define META_INODE_FIXED_V1 84
#define META_INODE_SLOT 24     /* le32 idx, le32 len, key */
#define META_INODE_SLOT_V1 20  /* key, le32 len */
#define META_LINEAGE_SIZE 72   /* after the chunk map: 6 x (le64 stamp, le32 node) */
/* The entry record: version 2 (with the binding it continues) is written;
 * version 1, of 36 bytes (with the version it replaced) or 24 (without),
 * is still read. */
#define META_DIRENT_VERSION 2
#define META_DIRENT_SIZE 48
#define META_DIRENT_V1_SIZE 36
#define META_DIRENT_V0_SIZE 24
#define META_XATTR_FIXED META_HEAD_SIZE /* the head, then the value bytes */
#define META_KEY_MAX (16 + META_NAME_MAX)

/* A directory entry's value. */
struct meta_dirent {
	struct store_version version;
	bool deleted;
	uint32_t type; /* S_IFMT bits */
	uint64_t child;
	/* the version of the record this one replaced at its key when written
	 * (0: none known), to tell a replacement from a concurrent write */
	struct store_version prev;
	/* the binding this one continues: a rename's source binding (zero: a
	 * new binding, made by create, link or mkdir). meta_dirent_binding. */
	struct store_version origin;
};

/* The binding d belongs to: its origin, or its own version for a new one.
 * A rename moves a binding; at most one live entry holds it (rebind.c). */
struct store_version meta_dirent_binding(const struct meta_dirent *d);

/* The position of a name in its directory: a 62-bit hash moved past the
 * positions 0..3 that readdir uses for its start, "." and "..". */
uint64_t meta_name_pos(const char *name, size_t len);

void meta_be64(uint8_t *p, uint64_t v);
uint64_t meta_get_be64(const uint8_t *p);

/* Keys: inode = be64 ino; entry = be64 parent, be64 pos, name; xattr = be64 ino, name. */
size_t meta_key_dirent(uint8_t *key, uint64_t parent, const char *name, size_t len);
size_t meta_key_xattr(uint8_t *key, uint64_t ino, const char *name, size_t len);

/* The head of a value: encode writes its 16 bytes (bytes 2-3 zero); decode
 * returns -EBADMSG when len is short or the record version unknown. deleted
 * may be NULL. */
void meta_head_encode(uint8_t out[META_HEAD_SIZE], const struct store_version *v, bool deleted);
int meta_head_decode(const uint8_t *p, size_t len, struct store_version *v, bool *deleted);

/* The wire record (table, key, value) of meta.h into out, which holds
 * META_WIRE_HEAD + klen + vlen bytes. */
void meta_wire_encode(uint8_t *out, uint8_t table, const void *key, size_t klen, const void *val,
		      size_t vlen);

/* Inode values. encode returns a malloc'd buffer of *len bytes (NULL: ENOMEM). */
uint8_t *meta_inode_encode(const struct meta_inode *in, bool deleted, size_t *len);
/* Decodes; chunks are copied out only when with_chunks. -EBADMSG, -ENOMEM. */
int meta_inode_decode(const uint8_t *p, size_t len, bool with_chunks, struct meta_inode *in);
/* The bytes an encoded inode record holds reserved (fallocate): 0 for any
 * other record or version. Reads only the fixed part. */
uint64_t meta_inode_reserved(const uint8_t *p, size_t len);

/* The lineage trailer of an inode record (META_LINEAGE_SIZE bytes). */
void meta_lineage_encode(const struct meta_lineage *l, uint8_t out[META_LINEAGE_SIZE]);
void meta_lineage_decode(const uint8_t in[META_LINEAGE_SIZE], struct meta_lineage *l);

void meta_dirent_encode(const struct meta_dirent *d, uint8_t out[META_DIRENT_SIZE]);
int meta_dirent_decode(const uint8_t *p, size_t len, struct meta_dirent *d);

#endif
