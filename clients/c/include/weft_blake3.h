/* BLAKE3-256, written from the BLAKE3 specification (hash mode only).
 *
 * Portable C99, no heap, no global state. The hasher is a plain struct the
 * caller owns; copying it copies the hash state (the proof of work relies
 * on that to hash a message's fixed prefix once). */
#ifndef WEFT_BLAKE3_H
#define WEFT_BLAKE3_H

#include <stddef.h>
#include <stdint.h>

#define WEFT_BLAKE3_OUT_LEN 32
#define WEFT_BLAKE3_BLOCK_LEN 64
#define WEFT_BLAKE3_CHUNK_LEN 1024

/* The chaining values the hasher can stack bound its input: at most
 * 2^(WEFT_BLAKE3_MAX_DEPTH+1) - 1 chunks of 1024 bytes, 523,264 bytes with
 * the default of 8. A Weft message is at most 65,730 bytes. Input beyond
 * the bound makes weft_blake3_final fail. */
#ifndef WEFT_BLAKE3_MAX_DEPTH
#define WEFT_BLAKE3_MAX_DEPTH 8
#endif

typedef struct {
	uint32_t cv[8];
	uint64_t chunk_counter;
	uint8_t block[WEFT_BLAKE3_BLOCK_LEN];
	uint8_t block_len;
	uint8_t blocks_compressed;
} weft_blake3_chunk;

typedef struct {
	weft_blake3_chunk chunk;
	uint8_t cv_stack[WEFT_BLAKE3_MAX_DEPTH][32];
	uint8_t cv_stack_len;
	uint8_t overflow; /* input went past the bound */
	/* compressions counts the calls of the compression function since
	 * init, for reports of the work done (one per 64-byte block, plus
	 * one per parent node). */
	uint32_t compressions;
} weft_blake3;

void weft_blake3_init(weft_blake3 *h);
void weft_blake3_update(weft_blake3 *h, const void *in, size_t len);
/* weft_blake3_final writes the 32-byte hash; it returns 0, or -1 if the
 * input was longer than the hasher's bound (out is then zeroed). It
 * changes only h->compressions, so a hasher may be finalized, updated and
 * finalized again. */
int weft_blake3_final(weft_blake3 *h, uint8_t out[WEFT_BLAKE3_OUT_LEN]);
/* weft_blake3 hashes in[0..len) in one call; it returns as final does. */
int weft_blake3_hash(const void *in, size_t len, uint8_t out[WEFT_BLAKE3_OUT_LEN]);

#endif
