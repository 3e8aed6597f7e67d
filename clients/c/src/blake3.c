/* BLAKE3-256 in hash mode, from the specification
 * (https://github.com/BLAKE3-team/BLAKE3-specs): the compression function
 * of section 2.2, chunks of section 2.4, the tree of section 2.5. Words
 * are little-endian throughout. */
#include <string.h>

#include "weft_blake3.h"

enum {
	CHUNK_START = 1 << 0,
	CHUNK_END = 1 << 1,
	PARENT = 1 << 2,
	ROOT = 1 << 3,
};

static const uint32_t IV[8] = {
	0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au,
	0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u,
};

static const uint8_t PERMUTATION[16] = {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8};

static uint32_t rotr(uint32_t w, unsigned c) { return (w >> c) | (w << (32 - c)); }

static uint32_t load32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store32(uint8_t *p, uint32_t w)
{
	p[0] = (uint8_t)w;
	p[1] = (uint8_t)(w >> 8);
	p[2] = (uint8_t)(w >> 16);
	p[3] = (uint8_t)(w >> 24);
}

static void g(uint32_t s[16], int a, int b, int c, int d, uint32_t mx, uint32_t my)
{
	s[a] = s[a] + s[b] + mx;
	s[d] = rotr(s[d] ^ s[a], 16);
	s[c] = s[c] + s[d];
	s[b] = rotr(s[b] ^ s[c], 12);
	s[a] = s[a] + s[b] + my;
	s[d] = rotr(s[d] ^ s[a], 8);
	s[c] = s[c] + s[d];
	s[b] = rotr(s[b] ^ s[c], 7);
}

/* compress is the compression function; out gets the first 8 words of
 * its output, the chaining value (all 16 are needed only for output
 * longer than 32 bytes, which Weft never asks for). */
static void compress(const uint32_t cv[8], const uint8_t block[64], uint64_t counter,
		     uint32_t block_len, uint32_t flags, uint32_t out[8])
{
	uint32_t m[16], t[16], s[16];
	int i, r;
	for (i = 0; i < 16; i++)
		m[i] = load32(block + 4 * i);
	for (i = 0; i < 8; i++)
		s[i] = cv[i];
	s[8] = IV[0];
	s[9] = IV[1];
	s[10] = IV[2];
	s[11] = IV[3];
	s[12] = (uint32_t)counter;
	s[13] = (uint32_t)(counter >> 32);
	s[14] = block_len;
	s[15] = flags;
	for (r = 0; r < 7; r++) {
		g(s, 0, 4, 8, 12, m[0], m[1]);
		g(s, 1, 5, 9, 13, m[2], m[3]);
		g(s, 2, 6, 10, 14, m[4], m[5]);
		g(s, 3, 7, 11, 15, m[6], m[7]);
		g(s, 0, 5, 10, 15, m[8], m[9]);
		g(s, 1, 6, 11, 12, m[10], m[11]);
		g(s, 2, 7, 8, 13, m[12], m[13]);
		g(s, 3, 4, 9, 14, m[14], m[15]);
		if (r < 6) {
			for (i = 0; i < 16; i++)
				t[i] = m[PERMUTATION[i]];
			memcpy(m, t, sizeof m);
		}
	}
	for (i = 0; i < 8; i++)
		out[i] = s[i] ^ s[i + 8];
}

static void cv_bytes(const uint32_t cv[8], uint8_t out[32])
{
	int i;
	for (i = 0; i < 8; i++)
		store32(out + 4 * i, cv[i]);
}

static void chunk_init(weft_blake3_chunk *c, uint64_t counter)
{
	memcpy(c->cv, IV, sizeof c->cv);
	c->chunk_counter = counter;
	memset(c->block, 0, sizeof c->block);
	c->block_len = 0;
	c->blocks_compressed = 0;
}

static size_t chunk_len(const weft_blake3_chunk *c)
{
	return (size_t)WEFT_BLAKE3_BLOCK_LEN * c->blocks_compressed + c->block_len;
}

static uint32_t chunk_start(const weft_blake3_chunk *c) { return c->blocks_compressed == 0 ? CHUNK_START : 0; }

/* chunk_update takes at most what fills the chunk. A full block stays
 * buffered until more input comes: the last block of a chunk is
 * compressed with CHUNK_END, and the hasher cannot know which is last. */
static void chunk_update(weft_blake3 *h, const uint8_t *in, size_t len)
{
	weft_blake3_chunk *c = &h->chunk;
	while (len > 0) {
		size_t take;
		if (c->block_len == WEFT_BLAKE3_BLOCK_LEN) {
			compress(c->cv, c->block, c->chunk_counter, WEFT_BLAKE3_BLOCK_LEN, chunk_start(c), c->cv);
			h->compressions++;
			c->blocks_compressed++;
			memset(c->block, 0, sizeof c->block);
			c->block_len = 0;
		}
		take = WEFT_BLAKE3_BLOCK_LEN - c->block_len;
		if (take > len)
			take = len;
		memcpy(c->block + c->block_len, in, take);
		c->block_len = (uint8_t)(c->block_len + take);
		in += take;
		len -= take;
	}
}

/* parent_cv is the chaining value of the parent node over two children. */
static void parent_cv(const uint8_t left[32], const uint8_t right[32], uint32_t flags, uint8_t out[32])
{
	uint8_t block[64];
	uint32_t cv[8];
	memcpy(block, left, 32);
	memcpy(block + 32, right, 32);
	compress(IV, block, 0, WEFT_BLAKE3_BLOCK_LEN, PARENT | flags, cv);
	cv_bytes(cv, out);
}

void weft_blake3_init(weft_blake3 *h)
{
	chunk_init(&h->chunk, 0);
	memset(h->cv_stack, 0, sizeof h->cv_stack);
	h->cv_stack_len = 0;
	h->overflow = 0;
	h->compressions = 0;
}

/* push_chunk adds a completed chunk's chaining value; total is the number
 * of chunks completed so far. Each trailing zero bit of total is a subtree
 * now complete: merge it with its left sibling on the stack. */
static void push_chunk(weft_blake3 *h, uint8_t cv[32], uint64_t total)
{
	while ((total & 1) == 0) {
		h->cv_stack_len--;
		parent_cv(h->cv_stack[h->cv_stack_len], cv, 0, cv);
		h->compressions++;
		total >>= 1;
	}
	if (h->cv_stack_len == WEFT_BLAKE3_MAX_DEPTH) {
		h->overflow = 1;
		return;
	}
	memcpy(h->cv_stack[h->cv_stack_len], cv, 32);
	h->cv_stack_len++;
}

void weft_blake3_update(weft_blake3 *h, const void *in, size_t len)
{
	const uint8_t *p = in;
	while (len > 0 && !h->overflow) {
		size_t take;
		if (chunk_len(&h->chunk) == WEFT_BLAKE3_CHUNK_LEN) {
			weft_blake3_chunk *c = &h->chunk;
			uint32_t cv[8];
			uint8_t b[32];
			uint64_t total = c->chunk_counter + 1;
			compress(c->cv, c->block, c->chunk_counter, c->block_len, chunk_start(c) | CHUNK_END, cv);
			h->compressions++;
			cv_bytes(cv, b);
			push_chunk(h, b, total);
			chunk_init(c, total);
		}
		take = WEFT_BLAKE3_CHUNK_LEN - chunk_len(&h->chunk);
		if (take > len)
			take = len;
		chunk_update(h, p, take);
		p += take;
		len -= take;
	}
}

int weft_blake3_final(weft_blake3 *h, uint8_t out[WEFT_BLAKE3_OUT_LEN])
{
	const weft_blake3_chunk *c = &h->chunk;
	uint32_t cv[8];
	uint8_t b[32];
	int i;
	if (h->overflow) {
		memset(out, 0, WEFT_BLAKE3_OUT_LEN);
		return -1;
	}
	if (h->cv_stack_len == 0) { /* one chunk: it is the root */
		compress(c->cv, c->block, c->chunk_counter, c->block_len, chunk_start(c) | CHUNK_END | ROOT, cv);
		h->compressions++;
		cv_bytes(cv, out);
		return 0;
	}
	compress(c->cv, c->block, c->chunk_counter, c->block_len, chunk_start(c) | CHUNK_END, cv);
	cv_bytes(cv, b);
	for (i = h->cv_stack_len - 1; i > 0; i--)
		parent_cv(h->cv_stack[i], b, 0, b);
	parent_cv(h->cv_stack[0], b, ROOT, out);
	h->compressions += 1u + h->cv_stack_len;
	return 0;
}

int weft_blake3_hash(const void *in, size_t len, uint8_t out[WEFT_BLAKE3_OUT_LEN])
{
	weft_blake3 h;
	weft_blake3_init(&h);
	weft_blake3_update(&h, in, len);
	return weft_blake3_final(&h, out);
}
