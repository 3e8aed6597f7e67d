/* weft-msg builds one signed, solved Weft message and writes its bytes to
 * stdout, to pipe into `curl --data-binary @-` or `mosquitto_pub -s`.
 *
 *   weft-msg --key FILE --network NAME --parents ID ID [--min-timestamp NS]
 *            [--seq N] [--timestamp NS] [--pow-base B] [--payload TEXT]
 *
 * The payload is TEXT, or stdin when --payload is not given. The parents
 * and min-timestamp come from the node's GET /api/v1/tips. The timestamp
 * defaults to the clock, raised to min-timestamp; seq to the timestamp,
 * which grows with each message. It prints the message's ID to stderr. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weft.h"
#include "weft_sodium.h"

static uint8_t payload[WEFT_MAX_PAYLOAD + 1];
static uint8_t msg[WEFT_MAX_SIZE];

static int usage(const char *why)
{
	fprintf(stderr, "weft-msg: %s\n"
			"usage: weft-msg --key FILE --network NAME --parents ID ID [--min-timestamp NS]\n"
			"                [--seq N] [--timestamp NS] [--pow-base B] [--payload TEXT]\n",
		why);
	return 2;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* unhex decodes exactly 2*n lower-case hex digits. */
static int unhex(const char *s, uint8_t *out, size_t n)
{
	size_t i;
	if (strlen(s) != 2 * n)
		return -1;
	for (i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int number(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long n;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*v = (uint64_t)n;
	return 0;
}

/* read_key reads a key file as `weft keygen` writes it: 64 lower-case hex
 * characters of the seed and a newline, nothing else. */
static int read_key(const char *path, uint8_t seed[32])
{
	char buf[67];
	size_t n;
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (n != 65 || buf[64] != '\n')
		return -1;
	buf[64] = '\0';
	return unhex(buf, seed, 32);
}

int main(int argc, char **argv)
{
	const char *key_path = NULL, *network = NULL, *text = NULL;
	uint64_t min_ts = 0, pow_base = WEFT_DEFAULT_POW_BASE;
	int have_seq = 0, have_ts = 0, have_parents = 0, i;
	uint8_t seed[32], id[WEFT_ID_SIZE];
	weft_message m;
	weft_sodium_key key;
	weft_signer signer;
	weft_work work;
	weft_err err;
	size_t len;

	memset(&m, 0, sizeof m);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL)
			return usage("a flag without its value");
		if (strcmp(a, "--key") == 0) {
			key_path = v;
		} else if (strcmp(a, "--network") == 0) {
			network = v;
		} else if (strcmp(a, "--parents") == 0) {
			if (i + 2 >= argc || unhex(argv[i + 1], m.parent0, 32) || unhex(argv[i + 2], m.parent1, 32))
				return usage("--parents takes two IDs of 64 hex characters");
			have_parents = 1;
			i++;
		} else if (strcmp(a, "--min-timestamp") == 0) {
			if (number(v, &min_ts))
				return usage("--min-timestamp is not a number");
		} else if (strcmp(a, "--seq") == 0) {
			if (number(v, &m.seq))
				return usage("--seq is not a number");
			have_seq = 1;
		} else if (strcmp(a, "--timestamp") == 0) {
			if (number(v, &m.timestamp))
				return usage("--timestamp is not a number");
			have_ts = 1;
		} else if (strcmp(a, "--pow-base") == 0) {
			if (number(v, &pow_base) || pow_base > 64)
				return usage("--pow-base is not a number up to 64");
		} else if (strcmp(a, "--payload") == 0) {
			text = v;
		} else {
			return usage("unknown flag");
		}
		i++;
	}
	if (key_path == NULL || network == NULL || !have_parents)
		return usage("--key, --network and --parents are required");
	if (read_key(key_path, seed) != 0) {
		fprintf(stderr, "weft-msg: %s: not a key file (64 lower-case hex characters and a newline)\n", key_path);
		return 1;
	}
	if (weft_sodium_key_from_seed(&key, seed, m.issuer) != 0) {
		fprintf(stderr, "weft-msg: libsodium failed to initialize\n");
		return 1;
	}
	memset(seed, 0, sizeof seed);

	if (text != NULL) {
		m.payload_len = strlen(text);
		if (m.payload_len > WEFT_MAX_PAYLOAD)
			return usage("--payload is longer than 65535 bytes");
		memcpy(payload, text, m.payload_len);
	} else {
		m.payload_len = fread(payload, 1, sizeof payload, stdin);
		if (ferror(stdin)) {
			fprintf(stderr, "weft-msg: reading the payload: %s\n", strerror(errno));
			return 1;
		}
		if (m.payload_len > WEFT_MAX_PAYLOAD)
			return usage("the payload on stdin is longer than 65535 bytes");
	}
	m.payload = payload;
	if (!have_ts) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		m.timestamp = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	}
	if (m.timestamp < min_ts)
		m.timestamp = min_ts;
	if (!have_seq)
		m.seq = m.timestamp;
	if ((err = weft_network_id(network, strlen(network), &m.network)) != WEFT_OK)
		return usage(weft_strerror(err));

	signer = weft_sodium_signer(&key);
	err = weft_build(&m, &signer, (unsigned)pow_base, msg, sizeof msg, &len, &work);
	weft_sodium_wipe(&key);
	if (err != WEFT_OK) {
		fprintf(stderr, "weft-msg: %s\n", weft_strerror(err));
		return 1;
	}
	weft_id(msg, len, id);
	for (i = 0; i < WEFT_ID_SIZE; i++)
		fprintf(stderr, "%02x", id[i]);
	fprintf(stderr, "\n");
	if (fwrite(msg, 1, len, stdout) != len || fflush(stdout) != 0) {
		fprintf(stderr, "weft-msg: writing the message: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
