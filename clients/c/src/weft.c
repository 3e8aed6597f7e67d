/* Weft messages: encoding (PROTOCOL.md 1), ID (2), signature placement (3)
 * and proof of work (4). */
#include <string.h>

#include "weft.h"

#define OFF_NETWORK 1
#define OFF_PARENT0 9
#define OFF_PARENT1 41
#define OFF_ISSUER 73
#define OFF_SEQ 105
#define OFF_TIMESTAMP 113
#define OFF_LEN 121

const char *weft_strerror(weft_err err)
{
	switch (err) {
	case WEFT_OK:
		return "ok";
	case WEFT_ERR_BUFFER:
		return "buffer too small for the message";
	case WEFT_ERR_PAYLOAD:
		return "payload longer than 65535 bytes";
	case WEFT_ERR_TIMESTAMP:
		return "timestamp has its top bit set";
	case WEFT_ERR_SIGN:
		return "the signer failed";
	case WEFT_ERR_WORK:
		return "no nonce met the difficulty within the tries allowed";
	case WEFT_ERR_ENCODING:
		return "not a message encoding";
	case WEFT_ERR_ARGUMENT:
		return "invalid argument";
	}
	return "unknown error";
}

static void put64(uint8_t *p, uint64_t v)
{
	int i;
	for (i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;
	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

weft_err weft_network_id(const char *name, size_t len, uint64_t *id)
{
	static const char prefix[] = "weft network ";
	weft_blake3 h;
	uint8_t sum[WEFT_BLAKE3_OUT_LEN];
	if ((name == NULL && len > 0) || id == NULL)
		return WEFT_ERR_ARGUMENT;
	weft_blake3_init(&h);
	weft_blake3_update(&h, prefix, sizeof prefix - 1);
	weft_blake3_update(&h, name, len);
	if (weft_blake3_final(&h, sum) != 0)
		return WEFT_ERR_ARGUMENT; /* a name past the hasher's bound */
	*id = get64(sum);
	return WEFT_OK;
}

unsigned weft_difficulty(unsigned base, size_t size)
{
	size_t blocks = (size + 255) / 256;
	unsigned d = base;
	if (base == 0)
		return 0;
	/* ceil(log2(blocks)): the bits of blocks-1 */
	for (blocks = blocks > 0 ? blocks - 1 : 0; blocks > 0; blocks >>= 1)
		d++;
	return d;
}

weft_err weft_encode(const weft_message *m, uint8_t *buf, size_t cap, size_t *len)
{
	size_t n;
	if (m == NULL || buf == NULL || len == NULL || (m->payload == NULL && m->payload_len > 0))
		return WEFT_ERR_ARGUMENT;
	if (m->payload_len > WEFT_MAX_PAYLOAD)
		return WEFT_ERR_PAYLOAD;
	if (m->timestamp >> 63)
		return WEFT_ERR_TIMESTAMP;
	n = weft_size(m->payload_len);
	if (cap < n)
		return WEFT_ERR_BUFFER;
	buf[0] = WEFT_VERSION;
	put64(buf + OFF_NETWORK, m->network);
	memcpy(buf + OFF_PARENT0, m->parent0, WEFT_ID_SIZE);
	memcpy(buf + OFF_PARENT1, m->parent1, WEFT_ID_SIZE);
	memcpy(buf + OFF_ISSUER, m->issuer, WEFT_KEY_SIZE);
	put64(buf + OFF_SEQ, m->seq);
	put64(buf + OFF_TIMESTAMP, m->timestamp);
	buf[OFF_LEN] = (uint8_t)(m->payload_len >> 8);
	buf[OFF_LEN + 1] = (uint8_t)m->payload_len;
	if (m->payload_len > 0)
		memcpy(buf + WEFT_HEADER_SIZE, m->payload, m->payload_len);
	memset(buf + WEFT_HEADER_SIZE + m->payload_len, 0, WEFT_SIG_SIZE + 8);
	*len = n;
	return WEFT_OK;
}

weft_err weft_check_encoding(const uint8_t *msg, size_t len)
{
	size_t n;
	if (msg == NULL || len < WEFT_OVERHEAD)
		return WEFT_ERR_ENCODING;
	n = (size_t)msg[OFF_LEN] << 8 | msg[OFF_LEN + 1];
	if (len != weft_size(n) || msg[0] != WEFT_VERSION || (msg[OFF_TIMESTAMP] & 0x80))
		return WEFT_ERR_ENCODING;
	return WEFT_OK;
}

weft_err weft_sign(uint8_t *msg, size_t len, const weft_signer *signer)
{
	size_t signing;
	weft_err err = weft_check_encoding(msg, len);
	if (err != WEFT_OK)
		return err;
	if (signer == NULL || signer->sign == NULL)
		return WEFT_ERR_ARGUMENT;
	signing = len - WEFT_SIG_SIZE - 8;
	if (signer->sign(signer->ctx, msg + signing, msg, signing) != 0)
		return WEFT_ERR_SIGN;
	return WEFT_OK;
}

unsigned weft_leading_zeros(const uint8_t id[WEFT_ID_SIZE])
{
	unsigned z = 0;
	int i;
	for (i = 0; i < WEFT_ID_SIZE; i++) {
		uint8_t b = id[i];
		if (b == 0) {
			z += 8;
			continue;
		}
		while (!(b & 0x80)) {
			z++;
			b = (uint8_t)(b << 1);
		}
		break;
	}
	return z;
}

weft_err weft_id(const uint8_t *msg, size_t len, uint8_t id[WEFT_ID_SIZE])
{
	if (msg == NULL || id == NULL)
		return WEFT_ERR_ARGUMENT;
	return weft_blake3_hash(msg, len, id) == 0 ? WEFT_OK : WEFT_ERR_ENCODING;
}

weft_err weft_solve(uint8_t *msg, size_t len, unsigned difficulty, uint64_t start, uint64_t max_tries,
		    weft_work *work)
{
	weft_blake3 mid, h;
	uint8_t id[WEFT_ID_SIZE];
	size_t fixed;
	uint64_t nonce = start, tries = 0, compressions = 0;
	weft_err err = weft_check_encoding(msg, len);
	if (err != WEFT_OK)
		return err;
	if (difficulty > 8 * WEFT_ID_SIZE)
		return WEFT_ERR_ARGUMENT;
	/* Everything but the nonce is the same for every try: hash it once,
	 * and copy that state for each try. The blocks before the one that
	 * holds the nonce's first byte are then compressed once in all. */
	fixed = len - 8;
	weft_blake3_init(&mid);
	weft_blake3_update(&mid, msg, fixed);
	compressions = mid.compressions;
	for (;;) {
		put64(msg + len - 8, nonce);
		h = mid;
		weft_blake3_update(&h, msg + fixed, len - fixed);
		if (weft_blake3_final(&h, id) != 0)
			return WEFT_ERR_ENCODING;
		compressions += h.compressions - mid.compressions;
		tries++;
		if (weft_leading_zeros(id) >= difficulty) {
			err = WEFT_OK;
			break;
		}
		if ((max_tries != 0 && tries == max_tries) || nonce == UINT64_MAX) {
			err = WEFT_ERR_WORK;
			break;
		}
		nonce++;
	}
	if (work != NULL) {
		work->tries = tries;
		work->compressions = compressions;
	}
	return err;
}

weft_err weft_build(const weft_message *m, const weft_signer *signer, unsigned pow_base, uint8_t *buf,
		    size_t cap, size_t *len, weft_work *work)
{
	weft_err err = weft_encode(m, buf, cap, len);
	if (err != WEFT_OK)
		return err;
	if ((err = weft_sign(buf, *len, signer)) != WEFT_OK)
		return err;
	return weft_solve(buf, *len, weft_difficulty(pow_base, *len), 0, 0, work);
}
