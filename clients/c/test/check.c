/* check tests the library against docs/PROTOCOL.md and measures it.
 *
 *   check vectors PROTOCOL.md   every ```vector block of section 7: the
 *                               network id, the key, the signing bytes,
 *                               the signature, the nonce found from 0 up,
 *                               the encoding and the ID
 *   check blake3 LEN...         BLAKE3-256 of the bytes i % 251, i < LEN,
 *                               in hex, one line per LEN (the test compares
 *                               them with another implementation)
 *   check errors                the library's typed errors
 *   check bench N               N messages of 100-byte payloads at the
 *                               default difficulty: tries, compressions and
 *                               time of the proof of work, time to sign */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weft.h"
#include "weft_sodium.h"

static int failures;

#define FAIL(...)                                                                                                      \
	do {                                                                                                           \
		fprintf(stderr, __VA_ARGS__);                                                                          \
		fprintf(stderr, "\n");                                                                                 \
		failures++;                                                                                            \
	} while (0)

#define FAIL_RETURN(...)                                                                                               \
	do {                                                                                                           \
		FAIL(__VA_ARGS__);                                                                                     \
		return;                                                                                                \
	} while (0)

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* unhex decodes s into out (cap bytes) and returns the length, or -1. */
static long unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = strlen(s), i;
	if (n % 2 != 0 || n / 2 > cap)
		return -1;
	for (i = 0; i < n / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return (long)(n / 2);
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;
	for (i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* A vector block's fields, as text. */
#define MAX_FIELDS 24
struct vector {
	char *key[MAX_FIELDS], *value[MAX_FIELDS];
	int n;
};

static const char *field(const struct vector *v, const char *key)
{
	int i;
	for (i = 0; i < v->n; i++)
		if (strcmp(v->key[i], key) == 0)
			return v->value[i];
	return NULL;
}

static uint64_t field_u64(const struct vector *v, const char *key)
{
	const char *s = field(v, key);
	return s ? strtoull(s, NULL, 10) : 0;
}

static int field_bytes(const struct vector *v, const char *key, uint8_t *out, size_t want)
{
	const char *s = field(v, key);
	return s != NULL && unhex(s, out, want) == (long)want ? 0 : -1;
}

static uint8_t buf[WEFT_MAX_SIZE], want_enc[WEFT_MAX_SIZE], payload[WEFT_MAX_PAYLOAD];

static void check_vector(const struct vector *v)
{
	const char *name = field(v, "name"), *net = field(v, "network"), *enc_hex = field(v, "encoding");
	uint8_t id[WEFT_ID_SIZE], want_id[WEFT_ID_SIZE], seed[32], issuer[32], nid[8], sig[64];
	uint64_t network, want_network = 0;
	long enc_len;
	size_t len;
	int i;
	if (name == NULL || net == NULL || enc_hex == NULL)
		FAIL_RETURN("a vector block without name, network or encoding");
	if ((enc_len = unhex(enc_hex, want_enc, sizeof want_enc)) < 0 || field_bytes(v, "id", want_id, 32) ||
	    field_bytes(v, "network_id", nid, 8))
		FAIL_RETURN("%s: a field is not hex", name);
	weft_network_id(net, strlen(net), &network);
	for (i = 0; i < 8; i++)
		want_network = want_network << 8 | nid[i];
	if (network != want_network)
		FAIL("%s: network id %016llx, want %016llx", name, (unsigned long long)network,
		     (unsigned long long)want_network);
	if (weft_check_encoding(want_enc, (size_t)enc_len) != WEFT_OK)
		FAIL("%s: the vector's encoding does not check", name);
	weft_id(want_enc, (size_t)enc_len, id);
	if (memcmp(id, want_id, 32) != 0)
		FAIL("%s: ID of the encoding differs", name);
	if (field(v, "seed") == NULL) { /* the genesis: nothing to build */
		printf("ok %s (id)\n", name);
		return;
	}

	{
		weft_message m;
		weft_sodium_key key;
		weft_signer signer;
		weft_work work;
		uint64_t nonce = field_u64(v, "nonce");
		unsigned d = (unsigned)field_u64(v, "difficulty");
		long plen;
		uint8_t signed_bytes[WEFT_MAX_SIZE];
		long signed_len;
		memset(&m, 0, sizeof m);
		m.network = network;
		if (field_bytes(v, "seed", seed, 32) || field_bytes(v, "issuer", issuer, 32) ||
		    field_bytes(v, "parent0", m.parent0, 32) || field_bytes(v, "parent1", m.parent1, 32) ||
		    field_bytes(v, "signature", sig, 64) ||
		    (plen = unhex(field(v, "payload") ? field(v, "payload") : "", payload, sizeof payload)) < 0 ||
		    (signed_len = unhex(field(v, "signed"), signed_bytes, sizeof signed_bytes)) < 0)
			FAIL_RETURN("%s: a field is missing or not hex", name);
		m.seq = field_u64(v, "seq");
		m.timestamp = field_u64(v, "timestamp");
		m.payload = payload;
		m.payload_len = (size_t)plen;
		if (weft_sodium_key_from_seed(&key, seed, m.issuer) != 0)
			FAIL_RETURN("libsodium failed to initialize");
		if (memcmp(m.issuer, issuer, 32) != 0)
			FAIL("%s: the seed's public key differs from issuer", name);
		if (weft_difficulty((unsigned)field_u64(v, "pow_base"), (size_t)enc_len) != d)
			FAIL("%s: difficulty %u, want %u", name,
			     weft_difficulty((unsigned)field_u64(v, "pow_base"), (size_t)enc_len), d);
		if (weft_encode(&m, buf, sizeof buf, &len) != WEFT_OK || len != (size_t)enc_len)
			FAIL_RETURN("%s: encoding failed or has the wrong size", name);
		if ((long)weft_signing_len(m.payload_len) != signed_len ||
		    memcmp(buf, signed_bytes, (size_t)signed_len) != 0)
			FAIL("%s: signing bytes differ", name);
		signer = weft_sodium_signer(&key);
		if (weft_sign(buf, len, &signer) != WEFT_OK)
			FAIL_RETURN("%s: signing failed", name);
		if (memcmp(buf + signed_len, sig, 64) != 0)
			FAIL("%s: signature differs", name);
		if (weft_solve(buf, len, d, 0, 0, &work) != WEFT_OK)
			FAIL_RETURN("%s: no nonce found", name);
		if (work.tries != nonce + 1)
			FAIL("%s: found the nonce after %llu tries, want %llu", name, (unsigned long long)work.tries,
			     (unsigned long long)nonce + 1);
		if (memcmp(buf, want_enc, len) != 0)
			FAIL("%s: encoding differs", name);
		weft_id(buf, len, id);
		if (memcmp(id, want_id, 32) != 0 || weft_leading_zeros(id) < d)
			FAIL("%s: ID differs or misses the difficulty", name);
		/* The same again in one call. */
		memset(buf, 0xee, sizeof buf);
		if (weft_build(&m, &signer, (unsigned)field_u64(v, "pow_base"), buf, sizeof buf, &len, NULL) !=
			    WEFT_OK ||
		    len != (size_t)enc_len || memcmp(buf, want_enc, len) != 0)
			FAIL("%s: weft_build's message differs", name);
		weft_sodium_wipe(&key);
		printf("ok %s (signed, solved: %llu tries, %llu compressions)\n", name,
		       (unsigned long long)work.tries, (unsigned long long)work.compressions);
	}
}

/* vectors reads PROTOCOL.md and checks each ```vector block. */
static int vectors(const char *path)
{
	static char line[1 << 18];
	struct vector v;
	int in = 0, count = 0, i;
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		perror(path);
		return 1;
	}
	v.n = 0;
	while (fgets(line, sizeof line, f) != NULL) {
		size_t n = strlen(line);
		char *colon;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (!in) {
			in = strcmp(line, "```vector") == 0;
			continue;
		}
		if (strcmp(line, "```") == 0) {
			check_vector(&v);
			count++;
			for (i = 0; i < v.n; i++) {
				free(v.key[i]);
				free(v.value[i]);
			}
			v.n = 0;
			in = 0;
			continue;
		}
		colon = strstr(line, ": ");
		if (colon == NULL || v.n == MAX_FIELDS) {
			FAIL("a vector line is not 'key: value': %.40s", line);
			continue;
		}
		*colon = '\0';
		v.key[v.n] = malloc(strlen(line) + 1);
		v.value[v.n] = malloc(strlen(colon + 2) + 1);
		if (v.key[v.n] == NULL || v.value[v.n] == NULL) {
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
		strcpy(v.key[v.n], line);
		strcpy(v.value[v.n], colon + 2);
		v.n++;
	}
	fclose(f);
	if (count < 3)
		FAIL("%d vector blocks in %s, want at least 3", count, path);
	return failures != 0;
}

static int blake3(int argc, char **argv)
{
	static uint8_t in[1 << 20];
	uint8_t out[32];
	char h[65];
	int i;
	size_t j;
	for (i = 0; i < argc; i++) {
		size_t n = strtoul(argv[i], NULL, 10);
		weft_blake3 s;
		if (n > sizeof in) {
			fprintf(stderr, "length %zu above %zu\n", n, sizeof in);
			return 1;
		}
		for (j = 0; j < n; j++)
			in[j] = (uint8_t)(j % 251);
		/* In two uneven pieces, to test the incremental path too. */
		weft_blake3_init(&s);
		weft_blake3_update(&s, in, n / 3);
		weft_blake3_update(&s, in + n / 3, n - n / 3);
		if (weft_blake3_final(&s, out) != 0) {
			printf("%zu overflow\n", n);
			continue;
		}
		hex(out, 32, h);
		printf("%zu %s\n", n, h);
	}
	return 0;
}

static int refuse(void *ctx, uint8_t sig[64], const uint8_t *m, size_t n)
{
	(void)ctx, (void)sig, (void)m, (void)n;
	return -1;
}

static int errors(void)
{
	weft_message m;
	weft_signer bad = {refuse, NULL};
	size_t len;
	uint8_t small[WEFT_OVERHEAD + 3];
	memset(&m, 0, sizeof m);
	m.payload = payload;
	m.payload_len = 4;
	if (weft_encode(&m, small, sizeof small, &len) != WEFT_ERR_BUFFER)
		FAIL("a buffer one byte short is not WEFT_ERR_BUFFER");
	m.payload_len = WEFT_MAX_PAYLOAD + 1;
	if (weft_encode(&m, buf, sizeof buf, &len) != WEFT_ERR_PAYLOAD)
		FAIL("a payload of 65536 bytes is not WEFT_ERR_PAYLOAD");
	m.payload_len = 0;
	m.timestamp = (uint64_t)1 << 63;
	if (weft_encode(&m, buf, sizeof buf, &len) != WEFT_ERR_TIMESTAMP)
		FAIL("a timestamp with its top bit set is not WEFT_ERR_TIMESTAMP");
	m.timestamp = 1;
	if (weft_build(&m, &bad, 0, buf, sizeof buf, &len, NULL) != WEFT_ERR_SIGN)
		FAIL("a failing signer is not WEFT_ERR_SIGN");
	if (weft_encode(&m, buf, sizeof buf, &len) != WEFT_OK || len != WEFT_OVERHEAD)
		FAIL("an empty payload does not encode to 195 bytes");
	if (weft_solve(buf, len, 256, 0, 1000, NULL) != WEFT_ERR_WORK)
		FAIL("a difficulty of 256 within 1000 tries is not WEFT_ERR_WORK");
	if (weft_solve(buf, len, 257, 0, 0, NULL) != WEFT_ERR_ARGUMENT)
		FAIL("a difficulty of 257 is not WEFT_ERR_ARGUMENT");
	if (weft_check_encoding(buf, len - 1) != WEFT_ERR_ENCODING || weft_sign(buf, len + 1, &bad) != WEFT_ERR_ENCODING)
		FAIL("a truncated or extended encoding is not WEFT_ERR_ENCODING");
	buf[0] = 2;
	if (weft_check_encoding(buf, len) != WEFT_ERR_ENCODING)
		FAIL("version 2 is not WEFT_ERR_ENCODING");
	if (weft_difficulty(10, 195) != 10 || weft_difficulty(10, 257) != 11 || weft_difficulty(10, 1024) != 12 ||
	    weft_difficulty(10, 1025) != 13 || weft_difficulty(0, 2000) != 0)
		FAIL("weft_difficulty differs from PROTOCOL.md 4's table");
	if (failures == 0)
		printf("ok errors\n");
	return failures != 0;
}

static double seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int bench(int n)
{
	weft_message m;
	weft_sodium_key key;
	weft_signer signer;
	weft_work work;
	uint8_t seed[32] = {7};
	uint64_t tries = 0, compressions = 0;
	double sign_s = 0, pow_s = 0, t;
	size_t len;
	int i;
	memset(&m, 0, sizeof m);
	memset(payload, 'x', 100);
	m.payload = payload;
	m.payload_len = 100;
	weft_network_id("weft-bench", 10, &m.network);
	if (weft_sodium_key_from_seed(&key, seed, m.issuer) != 0)
		return 1;
	signer = weft_sodium_signer(&key);
	for (i = 0; i < n; i++) {
		m.seq = (uint64_t)i + 1;
		m.timestamp = 1767225600000000000u + (uint64_t)i;
		weft_encode(&m, buf, sizeof buf, &len);
		t = seconds();
		weft_sign(buf, len, &signer);
		sign_s += seconds() - t;
		t = seconds();
		if (weft_solve(buf, len, weft_difficulty(WEFT_DEFAULT_POW_BASE, len), 0, 0, &work) != WEFT_OK)
			return 1;
		pow_s += seconds() - t;
		tries += work.tries;
		compressions += work.compressions;
	}
	printf("{\"messages\": %d, \"size\": %zu, \"difficulty\": %u, \"tries_per_message\": %.1f, "
	       "\"compressions_per_message\": %.1f, \"pow_us_per_message\": %.1f, \"sign_us\": %.1f}\n",
	       n, len, weft_difficulty(WEFT_DEFAULT_POW_BASE, len), (double)tries / n, (double)compressions / n,
	       pow_s / n * 1e6, sign_s / n * 1e6);
	weft_sodium_wipe(&key);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "vectors") == 0)
		return vectors(argv[2]);
	if (argc >= 2 && strcmp(argv[1], "blake3") == 0)
		return blake3(argc - 2, argv + 2);
	if (argc == 2 && strcmp(argv[1], "errors") == 0)
		return errors();
	if (argc == 3 && strcmp(argv[1], "bench") == 0)
		return bench(atoi(argv[2]));
	fprintf(stderr, "usage: check vectors PROTOCOL.md | blake3 LEN... | errors | bench N\n");
	return 2;
}
