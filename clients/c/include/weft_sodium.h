/* A weft_signer backed by libsodium's ed25519, for Linux gateways. */
#ifndef WEFT_SODIUM_H
#define WEFT_SODIUM_H

#include "weft.h"

/* weft_sodium_key is an ed25519 secret key in libsodium's form (the seed
 * and the public key). Wipe it with weft_sodium_wipe when done. */
typedef struct {
	uint8_t sk[64];
} weft_sodium_key;

/* weft_sodium_key_from_seed derives the key from a 32-byte seed (the
 * content of a Weft key file) and writes its public key to pub. It
 * returns 0, or -1 if libsodium cannot be initialized. */
int weft_sodium_key_from_seed(weft_sodium_key *key, const uint8_t seed[32], uint8_t pub[WEFT_KEY_SIZE]);

/* weft_sodium_sign is a weft_signer's sign: ctx is a weft_sodium_key. */
int weft_sodium_sign(void *ctx, uint8_t sig[WEFT_SIG_SIZE], const uint8_t *msg, size_t len);

/* weft_sodium_signer returns the signer for key. */
weft_signer weft_sodium_signer(weft_sodium_key *key);

void weft_sodium_wipe(weft_sodium_key *key);

#endif
