/* The libsodium signer. libsodium's crypto_sign is RFC 8032 Ed25519. */
#include <sodium.h>

#include "weft_sodium.h"

int weft_sodium_key_from_seed(weft_sodium_key *key, const uint8_t seed[32], uint8_t pub[WEFT_KEY_SIZE])
{
	if (sodium_init() < 0)
		return -1;
	return crypto_sign_seed_keypair(pub, key->sk, seed) == 0 ? 0 : -1;
}

int weft_sodium_sign(void *ctx, uint8_t sig[WEFT_SIG_SIZE], const uint8_t *msg, size_t len)
{
	const weft_sodium_key *key = ctx;
	return crypto_sign_detached(sig, NULL, msg, len, key->sk) == 0 ? 0 : -1;
}

weft_signer weft_sodium_signer(weft_sodium_key *key)
{
	weft_signer s;
	s.sign = weft_sodium_sign;
	s.ctx = key;
	return s;
}

void weft_sodium_wipe(weft_sodium_key *key) { sodium_memzero(key->sk, sizeof key->sk); }
