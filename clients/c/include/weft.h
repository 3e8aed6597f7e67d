/* Weft device library: build, sign, solve and encode a Weft message
 * (docs/PROTOCOL.md), in C99 with no heap allocation and no global state.
 * Every buffer is the caller's; every function is reentrant.
 *
 * Building a message is three steps, which weft_build does in one call:
 *   1. weft_encode writes the message with a zero signature and nonce;
 *   2. the signer signs the signing bytes, buf[0 .. weft_signing_len(n));
 *   3. weft_solve searches the nonce for the proof of work.
 * Signing is behind weft_signer, so that a device can use any RFC 8032
 * ed25519 signer: libsodium on Linux (weft_sodium.h), a microcontroller's
 * software ed25519 or a secure element. */
#ifndef WEFT_H
#define WEFT_H

#include <stddef.h>
#include <stdint.h>

#include "weft_blake3.h"

#define WEFT_VERSION 1
#define WEFT_ID_SIZE 32
#define WEFT_KEY_SIZE 32
#define WEFT_SIG_SIZE 64
#define WEFT_HEADER_SIZE 123 /* up to the payload */
#define WEFT_OVERHEAD 195    /* header, signature and nonce */
#define WEFT_MAX_PAYLOAD 65535
#define WEFT_MAX_SIZE (WEFT_OVERHEAD + WEFT_MAX_PAYLOAD)
#define WEFT_DEFAULT_POW_BASE 10

/* weft_size is the encoding's size for a payload of n bytes. */
#define weft_size(n) ((size_t)WEFT_OVERHEAD + (size_t)(n))
/* weft_signing_len is the length of the signing bytes for a payload of n
 * bytes: everything before the signature. */
#define weft_signing_len(n) ((size_t)WEFT_HEADER_SIZE + (size_t)(n))

typedef enum {
	WEFT_OK = 0,
	WEFT_ERR_BUFFER,    /* the output buffer is too small */
	WEFT_ERR_PAYLOAD,   /* the payload is longer than 65535 bytes */
	WEFT_ERR_TIMESTAMP, /* the timestamp's top bit is set */
	WEFT_ERR_SIGN,      /* the signer failed */
	WEFT_ERR_WORK,      /* no nonce met the difficulty within the tries allowed */
	WEFT_ERR_ENCODING,  /* the bytes given are not a message's encoding */
	WEFT_ERR_ARGUMENT   /* a NULL pointer or a difficulty above 256 */
} weft_err;

/* weft_strerror returns a constant description of err. */
const char *weft_strerror(weft_err err);

/* A message's fields (PROTOCOL.md 1). The payload is the caller's. */
typedef struct {
	uint64_t network; /* the network id, see weft_network_id */
	uint8_t parent0[WEFT_ID_SIZE];
	uint8_t parent1[WEFT_ID_SIZE];
	uint8_t issuer[WEFT_KEY_SIZE]; /* the signer's ed25519 public key */
	uint64_t seq;
	uint64_t timestamp; /* nanoseconds since 1970 UTC, top bit 0 */
	const uint8_t *payload;
	size_t payload_len;
} weft_message;

/* weft_signer signs with the issuer's key. sign writes the ed25519
 * signature (RFC 8032, pure Ed25519) of msg[0..len) to sig and returns 0,
 * or returns non-zero if it cannot. ctx is passed through. */
typedef struct {
	int (*sign)(void *ctx, uint8_t sig[WEFT_SIG_SIZE], const uint8_t *msg, size_t len);
	void *ctx;
} weft_signer;

/* What a proof-of-work search did: tries is the number of BLAKE3 hashes
 * of the message (one per nonce tried), compressions the calls of
 * BLAKE3's compression function they took. */
typedef struct {
	uint64_t tries;
	uint64_t compressions;
} weft_work;

/* weft_network_id derives a network's id from its name (PROTOCOL.md 1.1). */
weft_err weft_network_id(const char *name, size_t len, uint64_t *id);

/* weft_difficulty is D(s), the leading zero bits of the ID a message of s
 * bytes needs on a network with this proof-of-work base (PROTOCOL.md 4). */
unsigned weft_difficulty(unsigned base, size_t size);

/* weft_encode writes m's encoding with a zero signature and nonce to buf
 * (cap bytes) and its size to *len. */
weft_err weft_encode(const weft_message *m, uint8_t *buf, size_t cap, size_t *len);

/* weft_sign signs an encoding in place: the signer signs its signing
 * bytes, and the signature goes where PROTOCOL.md 3 puts it. */
weft_err weft_sign(uint8_t *msg, size_t len, const weft_signer *signer);

/* weft_solve searches the nonce, counting up from start, until the ID has
 * difficulty leading zero bits, trying at most max_tries nonces (0: no
 * bound); it writes the nonce into msg. work, if not NULL, gets what the
 * search did. It hashes the bytes before the nonce once, so a try costs
 * one compression (two when the nonce straddles two 64-byte blocks). */
weft_err weft_solve(uint8_t *msg, size_t len, unsigned difficulty, uint64_t start, uint64_t max_tries,
		    weft_work *work);

/* weft_build does the three steps: encode m into buf, sign it, and solve
 * it at the difficulty of its size on a network with this base (nonces
 * from 0 up, without bound). */
weft_err weft_build(const weft_message *m, const weft_signer *signer, unsigned pow_base, uint8_t *buf,
		    size_t cap, size_t *len, weft_work *work);

/* weft_id writes the ID of an encoding: BLAKE3-256 of all its bytes. */
weft_err weft_id(const uint8_t *msg, size_t len, uint8_t id[WEFT_ID_SIZE]);

/* weft_leading_zeros counts the leading zero bits of an ID. */
unsigned weft_leading_zeros(const uint8_t id[WEFT_ID_SIZE]);

/* weft_check_encoding checks what PROTOCOL.md 1 asks of an encoding (the
 * size, version and timestamp; not the payload limit, which is the
 * network's) and returns WEFT_OK or WEFT_ERR_ENCODING. */
weft_err weft_check_encoding(const uint8_t *msg, size_t len);

#endif
