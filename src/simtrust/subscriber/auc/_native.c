/*
 * Batched HMAC-SHA-256 (RFC 2104) for the AKA key derivations of the generic
 * KDF (TS 33.220 Annex B.2): K_ASME (TS 33.401 Annex A.2), XRES* and K_AUSF
 * (TS 33.501 Annex A.4, A.2), over the records of Milenage.kernel_batch.
 *
 * SHA-256 is OpenSSL's (libcrypto, EVP with the digest fetched once at import),
 * which picks the CPU's SHA extensions where present; only the HMAC framing
 * and the packing of the vector outputs are written here. Every key these
 * derivations use is CK || IK or K_AUSF, 32 octets: shorter than the SHA-256
 * block, so the padded key is the key, 32 zero octets, XOR the pad byte.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>

#define KEY_LEN 32
#define BLOCK_LEN 64
#define DIGEST_LEN 32
#define RECORD_LEN 64 /* one kernel_batch record: MAC-A, MAC-S, SQN^AK, -, XRES, CK, IK */
#define RAND_LEN 16
#define AUTN_LEN 16
#define SN_ID_LEN 3
#define AMF_LEN 2

/* Offsets inside a kernel record (Milenage.kernel's layout). */
#define OFF_MAC_A 0
#define OFF_SQN_AK 16
#define OFF_XRES 24
#define OFF_CK_IK 32
#define XRES_LEN 8
#define SQN_AK_LEN 6

/* Batches at least this large are hashed with the GIL released (about 60 us of
 * hashing and up); a smaller one is done before another thread could use the core. */
#define NOGIL_MIN 256

/* Run ``stmt`` with the GIL released when ``cond`` holds; it must not touch Python. */
#define WITHOUT_GIL_IF(cond, stmt)                                                           \
    do {                                                                                     \
        if (cond) {                                                                          \
            Py_BEGIN_ALLOW_THREADS stmt;                                                     \
            Py_END_ALLOW_THREADS                                                             \
        }                                                                                    \
        else {                                                                               \
            stmt;                                                                            \
        }                                                                                    \
    } while (0)

typedef struct {
    EVP_MD *sha256;
    EVP_CIPHER *aes128; /* AES-128-ECB: the MILENAGE kernel E_K (milenage_eps) */
} native_state;

static native_state *
state_of(PyObject *module)
{
    return (native_state *)PyModule_GetState(module);
}

/* The digest contexts of one batch, reused for every vector: the inner and the
 * outer pass, and a scratch one for messages that share a key's pad states. */
typedef struct {
    EVP_MD_CTX *inner;
    EVP_MD_CTX *outer;
    EVP_MD_CTX *work;
} hmac_ctx;

static void
hmac_ctx_free(hmac_ctx *h)
{
    EVP_MD_CTX_free(h->inner);
    EVP_MD_CTX_free(h->outer);
    EVP_MD_CTX_free(h->work);
}

static int
hmac_ctx_init(hmac_ctx *h, const EVP_MD *md)
{
    h->inner = EVP_MD_CTX_new();
    h->outer = EVP_MD_CTX_new();
    h->work = EVP_MD_CTX_new();
    if (h->inner == NULL || h->outer == NULL || h->work == NULL
        || !EVP_DigestInit_ex2(h->inner, md, NULL) || !EVP_DigestInit_ex2(h->outer, md, NULL)
        || !EVP_DigestInit_ex2(h->work, md, NULL)) {
        hmac_ctx_free(h);
        return 0;
    }
    return 1;
}

/* Leave the inner and outer contexts holding the hash of the key's ipad and
 * opad blocks, so that several messages under one key share those two
 * compressions (the 5G HE AV derives XRES* and K_AUSF from one CK || IK). */
static int
hmac_set_key(hmac_ctx *h, const uint8_t key[KEY_LEN])
{
    uint8_t ipad[BLOCK_LEN];
    uint8_t opad[BLOCK_LEN];
    for (int i = 0; i < KEY_LEN; i++) {
        ipad[i] = key[i] ^ 0x36;
        opad[i] = key[i] ^ 0x5c;
    }
    memset(ipad + KEY_LEN, 0x36, BLOCK_LEN - KEY_LEN);
    memset(opad + KEY_LEN, 0x5c, BLOCK_LEN - KEY_LEN);
    return EVP_DigestInit_ex2(h->inner, NULL, NULL) && EVP_DigestUpdate(h->inner, ipad, BLOCK_LEN)
           && EVP_DigestInit_ex2(h->outer, NULL, NULL)
           && EVP_DigestUpdate(h->outer, opad, BLOCK_LEN);
}

/* HMAC of one message under the key last given to hmac_set_key. */
static int
hmac_message(hmac_ctx *h, const uint8_t *msg, size_t len, uint8_t out[DIGEST_LEN])
{
    uint8_t inner[DIGEST_LEN];
    unsigned int n;
    return EVP_MD_CTX_copy_ex(h->work, h->inner) && EVP_DigestUpdate(h->work, msg, len)
           && EVP_DigestFinal_ex(h->work, inner, &n) && EVP_MD_CTX_copy_ex(h->work, h->outer)
           && EVP_DigestUpdate(h->work, inner, DIGEST_LEN)
           && EVP_DigestFinal_ex(h->work, out, &n);
}

/* HMAC of one message under a key used once: no copies of the pad states. */
static int
hmac_once(hmac_ctx *h, const uint8_t key[KEY_LEN], const uint8_t *msg, size_t len,
          uint8_t out[DIGEST_LEN])
{
    uint8_t inner[DIGEST_LEN];
    unsigned int n;
    return hmac_set_key(h, key) && EVP_DigestUpdate(h->inner, msg, len)
           && EVP_DigestFinal_ex(h->inner, inner, &n)
           && EVP_DigestUpdate(h->outer, inner, DIGEST_LEN)
           && EVP_DigestFinal_ex(h->outer, out, &n);
}

static PyObject *
openssl_failed(void)
{
    PyErr_SetString(PyExc_RuntimeError, "OpenSSL SHA-256 failed");
    return NULL;
}

/* ``count`` must divide each buffer into records of the given lengths. */
static int
check_records(const char *name, Py_ssize_t len, Py_ssize_t count, Py_ssize_t per)
{
    if (len != count * per) {
        PyErr_Format(PyExc_ValueError,
                     "%s must hold %zd octets per item (%zd for %zd items), got %zd", name, per,
                     count * per, count, len);
        return 0;
    }
    return 1;
}

static int
check_exact(const char *name, Py_ssize_t len, Py_ssize_t want)
{
    if (len != want) {
        PyErr_Format(PyExc_ValueError, "%s must be %zd octets, got %zd", name, want, len);
        return 0;
    }
    return 1;
}

/* The kernel records and RANDs of one batch: the count is the number of records. */
static int
check_batch(const Py_buffer *raw, const Py_buffer *rands, Py_ssize_t *count)
{
    if (raw->len == 0 || raw->len % RECORD_LEN != 0) {
        PyErr_Format(PyExc_ValueError,
                     "raw must hold one or more %d-octet kernel records, got %zd octets",
                     RECORD_LEN, raw->len);
        return 0;
    }
    *count = raw->len / RECORD_LEN;
    return check_records("rands", rands->len, *count, RAND_LEN);
}

static int
check_tuple_type(PyObject *cls)
{
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "cls must be a tuple subclass (a NamedTuple)");
        return 0;
    }
    return 1;
}

/* An instance of the tuple subclass ``cls`` holding four new bytes objects,
 * filled as tuple.__new__(cls, (a, b, c, d)) does, without a call into Python. */
static PyObject *
new_record(PyTypeObject *cls, const uint8_t *a, Py_ssize_t na, const uint8_t *b,
           Py_ssize_t nb, const uint8_t *c, Py_ssize_t nc, const uint8_t *d, Py_ssize_t nd)
{
    PyObject *items[4] = {
        PyBytes_FromStringAndSize((const char *)a, na),
        PyBytes_FromStringAndSize((const char *)b, nb),
        PyBytes_FromStringAndSize((const char *)c, nc),
        PyBytes_FromStringAndSize((const char *)d, nd),
    };
    PyObject *rec = NULL;
    if (items[0] != NULL && items[1] != NULL && items[2] != NULL && items[3] != NULL) {
        rec = cls->tp_alloc(cls, 4);
    }
    if (rec == NULL) {
        for (int i = 0; i < 4; i++) {
            Py_XDECREF(items[i]);
        }
        return NULL;
    }
    for (int i = 0; i < 4; i++) {
        PyTuple_SET_ITEM(rec, i, items[i]);
    }
    return rec;
}

/* AUTN = SQN ^ AK || AMF || MAC-A (TS 33.102 6.3.2) from a kernel record. */
static void
autn_of(const uint8_t *record, const uint8_t amf[AMF_LEN], uint8_t autn[AUTN_LEN])
{
    memcpy(autn, record + OFF_SQN_AK, SQN_AK_LEN);
    memcpy(autn + SQN_AK_LEN, amf, AMF_LEN);
    memcpy(autn + SQN_AK_LEN + AMF_LEN, record + OFF_MAC_A, 8);
}

/* -- hmac_sha256_batch ---------------------------------------------------- */

static int
hash_pairs(const EVP_MD *md, const uint8_t *keys, const uint8_t *msgs, size_t msg_len,
           Py_ssize_t count, uint8_t *out)
{
    hmac_ctx h;
    if (!hmac_ctx_init(&h, md)) {
        return 0;
    }
    int ok = 1;
    for (Py_ssize_t i = 0; ok && i < count; i++) {
        ok = hmac_once(&h, keys + i * KEY_LEN, msgs + i * msg_len, msg_len, out + i * DIGEST_LEN);
    }
    hmac_ctx_free(&h);
    return ok;
}

PyDoc_STRVAR(hmac_sha256_batch_doc,
             "hmac_sha256_batch(keys, messages, count, /)\n--\n\n"
             "HMAC-SHA-256 of ``count`` (key, message) pairs: ``keys`` holds 32 octets per\n"
             "pair, ``messages`` the same number of octets per pair. Returns the 32-octet\n"
             "MACs concatenated in order.");

static PyObject *
hmac_sha256_batch(PyObject *module, PyObject *args)
{
    Py_buffer keys, msgs;
    Py_ssize_t count;
    if (!PyArg_ParseTuple(args, "y*y*n:hmac_sha256_batch", &keys, &msgs, &count)) {
        return NULL;
    }
    PyObject *result = NULL;
    if (count < 1) {
        PyErr_Format(PyExc_ValueError, "count must be at least 1, got %zd", count);
        goto done;
    }
    if (!check_records("keys", keys.len, count, KEY_LEN)) {
        goto done;
    }
    if (msgs.len % count != 0) {
        PyErr_Format(PyExc_ValueError,
                     "messages must hold the same number of octets per pair: %zd octets "
                     "do not split into %zd",
                     msgs.len, count);
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, count * DIGEST_LEN);
    if (result == NULL) {
        goto done;
    }
    const EVP_MD *md = state_of(module)->sha256;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
    size_t msg_len = (size_t)(msgs.len / count);
    int ok;
    WITHOUT_GIL_IF(count >= NOGIL_MIN,
                   ok = hash_pairs(md, keys.buf, msgs.buf, msg_len, count, out));
    if (!ok) {
        Py_CLEAR(result);
        openssl_failed();
    }
done:
    PyBuffer_Release(&keys);
    PyBuffer_Release(&msgs);
    return result;
}

/* -- eps_batch and he_av_batch --------------------------------------------- */

/* The hashing of one kind of vector for ``count`` kernel records: 1 on success,
 * 0 when OpenSSL fails, -1 when memory runs out. Runs without the GIL. */
typedef int (*hash_fn)(const EVP_MD *md, const uint8_t *raw, const uint8_t *rands,
                       const uint8_t *param, size_t param_len, Py_ssize_t count, uint8_t *out);

/* One vector object from its RAND, kernel record, AUTN and hash output. */
typedef PyObject *(*record_fn)(PyTypeObject *cls, const uint8_t *rand, const uint8_t *record,
                               const uint8_t *autn, const uint8_t *digests);

typedef struct {
    const char *format;     /* PyArg_ParseTuple format, naming the function */
    const char *param_name; /* the per-batch parameter: serving network id or name */
    Py_ssize_t param_len;   /* its exact length, or -1 for anything up to 65535 octets */
    Py_ssize_t out_len;     /* hash output octets per record */
    hash_fn hash;
    record_fn record;
} vector_kind;

/* K_ASME = KDF(CK || IK, FC 0x10, SN id, SQN ^ AK) for every record (TS 33.401 A.2). */
static int
hash_kasme(const EVP_MD *md, const uint8_t *raw, const uint8_t *rands, const uint8_t *sn_id,
           size_t sn_id_len, Py_ssize_t count, uint8_t *out)
{
    (void)rands;
    (void)sn_id_len;
    /* FC || SN id || 0x0003 || SQN ^ AK || 0x0006 */
    uint8_t msg[1 + SN_ID_LEN + 2 + SQN_AK_LEN + 2] = {0x10};
    memcpy(msg + 1, sn_id, SN_ID_LEN);
    msg[4] = 0x00;
    msg[5] = 0x03;
    msg[12] = 0x00;
    msg[13] = 0x06;
    hmac_ctx h;
    if (!hmac_ctx_init(&h, md)) {
        return 0;
    }
    int ok = 1;
    for (Py_ssize_t i = 0; ok && i < count; i++) {
        const uint8_t *rec = raw + i * RECORD_LEN;
        memcpy(msg + 6, rec + OFF_SQN_AK, SQN_AK_LEN);
        ok = hmac_once(&h, rec + OFF_CK_IK, msg, sizeof msg, out + i * DIGEST_LEN);
    }
    hmac_ctx_free(&h);
    return ok;
}

/* EpsVector(RAND, XRES, AUTN, K_ASME) */
static PyObject *
eps_record(PyTypeObject *cls, const uint8_t *rand, const uint8_t *record, const uint8_t *autn,
           const uint8_t *kasme)
{
    return new_record(cls, rand, RAND_LEN, record + OFF_XRES, XRES_LEN, autn, AUTN_LEN, kasme,
                      DIGEST_LEN);
}

/* For every record, the full KDF outputs for XRES* (FC 0x6B, TS 33.501 A.4) and
 * K_AUSF (FC 0x6A, A.2), both keyed with CK || IK: 64 octets per record. */
static int
hash_he(const EVP_MD *md, const uint8_t *raw, const uint8_t *rands, const uint8_t *name,
        size_t name_len, Py_ssize_t count, uint8_t *out)
{
    /* XRES*: FC || SN name || L0 || RAND || 0x0010 || RES || 0x0008
     * K_AUSF: FC || SN name || L0 || SQN ^ AK || 0x0006 */
    size_t head = 1 + name_len + 2;
    size_t xs_len = head + RAND_LEN + 2 + XRES_LEN + 2;
    size_t ka_len = head + SQN_AK_LEN + 2;
    uint8_t *xs = PyMem_RawMalloc(xs_len + ka_len);
    if (xs == NULL) {
        return -1;
    }
    uint8_t *ka = xs + xs_len;
    xs[0] = 0x6b;
    ka[0] = 0x6a;
    memcpy(xs + 1, name, name_len);
    memcpy(ka + 1, name, name_len);
    xs[head - 2] = ka[head - 2] = (uint8_t)(name_len >> 8);
    xs[head - 1] = ka[head - 1] = (uint8_t)name_len;
    xs[head + RAND_LEN] = 0x00;
    xs[head + RAND_LEN + 1] = 0x10;
    xs[xs_len - 2] = 0x00;
    xs[xs_len - 1] = 0x08;
    ka[ka_len - 2] = 0x00;
    ka[ka_len - 1] = 0x06;
    hmac_ctx h;
    if (!hmac_ctx_init(&h, md)) {
        PyMem_RawFree(xs);
        return 0;
    }
    int ok = 1;
    for (Py_ssize_t i = 0; ok && i < count; i++) {
        const uint8_t *rec = raw + i * RECORD_LEN;
        memcpy(xs + head, rands + i * RAND_LEN, RAND_LEN);
        memcpy(xs + head + RAND_LEN + 2, rec + OFF_XRES, XRES_LEN);
        memcpy(ka + head, rec + OFF_SQN_AK, SQN_AK_LEN);
        uint8_t *o = out + i * 2 * DIGEST_LEN;
        ok = hmac_set_key(&h, rec + OFF_CK_IK) && hmac_message(&h, xs, xs_len, o)
             && hmac_message(&h, ka, ka_len, o + DIGEST_LEN);
    }
    hmac_ctx_free(&h);
    PyMem_RawFree(xs);
    return ok;
}

/* HeAv5g(RAND, AUTN, XRES*, K_AUSF); XRES* is the 128 least significant bits of
 * its KDF output (TS 33.501 A.4). */
static PyObject *
he_record(PyTypeObject *cls, const uint8_t *rand, const uint8_t *record, const uint8_t *autn,
          const uint8_t *keys)
{
    (void)record;
    return new_record(cls, rand, RAND_LEN, autn, AUTN_LEN, keys + DIGEST_LEN / 2, DIGEST_LEN / 2,
                      keys + DIGEST_LEN, DIGEST_LEN);
}

static PyObject *
vector_batch(PyObject *module, PyObject *args, const vector_kind *kind)
{
    Py_buffer raw, rands, param, amf;
    PyObject *cls;
    if (!PyArg_ParseTuple(args, kind->format, &raw, &rands, &param, &amf, &cls)) {
        return NULL;
    }
    PyObject *list = NULL;
    uint8_t *digests = NULL;
    Py_ssize_t count;
    if (!check_batch(&raw, &rands, &count) || !check_exact("amf", amf.len, AMF_LEN)
        || !check_tuple_type(cls)) {
        goto done;
    }
    if (kind->param_len >= 0 && !check_exact(kind->param_name, param.len, kind->param_len)) {
        goto done;
    }
    if (param.len > 0xFFFF) {
        PyErr_Format(PyExc_ValueError, "%s must be at most 65535 octets, got %zd",
                     kind->param_name, param.len);
        goto done;
    }
    digests = PyMem_Malloc((size_t)(count * kind->out_len));
    if (digests == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    const EVP_MD *md = state_of(module)->sha256;
    int ok;
    WITHOUT_GIL_IF(count >= NOGIL_MIN, ok = kind->hash(md, raw.buf, rands.buf, param.buf,
                                                       (size_t)param.len, count, digests));
    if (ok < 0) {
        PyErr_NoMemory();
        goto done;
    }
    if (ok == 0) {
        openssl_failed();
        goto done;
    }
    list = PyList_New(count);
    if (list == NULL) {
        goto done;
    }
    uint8_t autn[AUTN_LEN];
    for (Py_ssize_t i = 0; i < count; i++) {
        const uint8_t *rec = (const uint8_t *)raw.buf + i * RECORD_LEN;
        autn_of(rec, amf.buf, autn);
        PyObject *v = kind->record((PyTypeObject *)cls, (const uint8_t *)rands.buf + i * RAND_LEN,
                                   rec, autn, digests + i * kind->out_len);
        if (v == NULL) {
            Py_CLEAR(list);
            goto done;
        }
        PyList_SET_ITEM(list, i, v);
    }
done:
    PyMem_Free(digests);
    PyBuffer_Release(&raw);
    PyBuffer_Release(&rands);
    PyBuffer_Release(&param);
    PyBuffer_Release(&amf);
    return list;
}

static const vector_kind EPS_KIND = {
    "y*y*y*y*O:eps_batch", "sn_id", SN_ID_LEN, DIGEST_LEN, hash_kasme, eps_record,
};

static const vector_kind HE_KIND = {
    "y*y*y*y*O:he_av_batch", "sn_name", -1, 2 * DIGEST_LEN, hash_he, he_record,
};

PyDoc_STRVAR(eps_batch_doc,
             "eps_batch(raw, rands, sn_id, amf, cls, /)\n--\n\n"
             "EPS-AKA vectors ``cls(RAND, XRES, AUTN, K_ASME)`` from Milenage.kernel_batch\n"
             "records ``raw`` (64 octets each) and their RANDs (16 octets each), for the\n"
             "3-octet serving network id and the 2-octet AMF the kernel was given.");

static PyObject *
eps_batch(PyObject *module, PyObject *args)
{
    return vector_batch(module, args, &EPS_KIND);
}

PyDoc_STRVAR(he_av_batch_doc,
             "he_av_batch(raw, rands, sn_name, amf, cls, /)\n--\n\n"
             "5G HE AVs ``cls(RAND, AUTN, XRES*, K_AUSF)`` from Milenage.kernel_batch\n"
             "records ``raw`` (64 octets each) and their RANDs (16 octets each), for the\n"
             "serving network name (its octets) and the 2-octet AMF the kernel was given.");

static PyObject *
he_av_batch(PyObject *module, PyObject *args)
{
    return vector_batch(module, args, &HE_KIND);
}

/* -- Keccak-f[1600] (FIPS 202 §3.2-3.4) for TUAK (TS 35.231 §6) ----------- */

static const uint64_t KECCAK_RC[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808AULL,
    0x8000000080008000ULL, 0x000000000000808BULL, 0x0000000080000001ULL,
    0x8000000080008081ULL, 0x8000000000008009ULL, 0x000000000000008AULL,
    0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000AULL,
    0x000000008000808BULL, 0x800000000000008BULL, 0x8000000000008089ULL,
    0x8000000000008003ULL, 0x8000000000008002ULL, 0x8000000000000080ULL,
    0x000000000000800AULL, 0x800000008000000AULL, 0x8000000080008081ULL,
    0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

/* rho offsets r[x + 5y] (FIPS 202 Table 2). */
static const unsigned KECCAK_RHO[25] = {
    0, 1, 62, 28, 27,
    36, 44, 6, 55, 20,
    3, 10, 43, 25, 39,
    41, 45, 15, 21, 8,
    18, 2, 61, 56, 14,
};

static inline uint64_t
rotl64(uint64_t v, unsigned n)
{
    return n == 0 ? v : (v << n) | (v >> (64 - n));
}

static void
keccak_permute(uint64_t a[25])
{
    uint64_t b[25], c[5], d[5];
    for (int round = 0; round < 24; round++) {
        for (int x = 0; x < 5; x++) {
            c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
        }
        for (int x = 0; x < 5; x++) {
            d[x] = c[(x + 4) % 5] ^ rotl64(c[(x + 1) % 5], 1);
        }
        for (int i = 0; i < 25; i++) {
            a[i] ^= d[i % 5];
        }
        /* rho and pi: B[y, 2x + 3y] = rot(A[x, y], r[x, y]). */
        for (int x = 0; x < 5; x++) {
            for (int y = 0; y < 5; y++) {
                b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl64(a[x + 5 * y], KECCAK_RHO[x + 5 * y]);
            }
        }
        for (int y = 0; y < 5; y++) {
            for (int x = 0; x < 5; x++) {
                a[x + 5 * y] = b[x + 5 * y]
                               ^ (~b[(x + 1) % 5 + 5 * y] & b[(x + 2) % 5 + 5 * y]);
            }
        }
        a[0] ^= KECCAK_RC[round];
    }
}

PyDoc_STRVAR(keccak_f1600_doc,
             "keccak_f1600(state, iterations, /)\n--\n\n"
             "Apply Keccak-f[1600] ``iterations`` times to a 200-octet state (lane\n"
             "``x + 5y`` little-endian at octet ``8 * (x + 5y)``); returns the new state.");

static PyObject *
keccak_f1600(PyObject *module, PyObject *args)
{
    (void)module;
    Py_buffer state;
    int iterations;
    if (!PyArg_ParseTuple(args, "y*i:keccak_f1600", &state, &iterations)) {
        return NULL;
    }
    if (state.len != 200 || iterations < 1 || iterations > 255) {
        PyBuffer_Release(&state);
        PyErr_SetString(PyExc_ValueError,
                        "keccak_f1600 takes a 200-octet state and 1..255 iterations");
        return NULL;
    }
    uint64_t lanes[25];
    const unsigned char *in = state.buf;
    for (int i = 0; i < 25; i++) {
        uint64_t v = 0;
        for (int j = 7; j >= 0; j--) {
            v = (v << 8) | in[8 * i + j];
        }
        lanes[i] = v;
    }
    PyBuffer_Release(&state);
    Py_BEGIN_ALLOW_THREADS
    for (int n = 0; n < iterations; n++) {
        keccak_permute(lanes);
    }
    Py_END_ALLOW_THREADS
    unsigned char out[200];
    for (int i = 0; i < 25; i++) {
        for (int j = 0; j < 8; j++) {
            out[8 * i + j] = (unsigned char)(lanes[i] >> (8 * j));
        }
    }
    return PyBytes_FromStringAndSize((const char *)out, 200);
}

PyDoc_STRVAR(tuak_core_doc,
             "tuak_core(top, instance, rand, amf, sqn, k, iterations, /)\n--\n\n"
             "The TUAK kernel (TS 35.231 \u00a76): INOUT built from TOP(c), INSTANCE,\n"
             "ALGONAME, RAND, AMF, SQN and K (each in reversed octet order, K padded\n"
             "to 32 octets, then the 0x1f / 0x80 padding), Keccak-f[1600] applied\n"
             "``iterations`` times; returns the 200-octet OUT.");

static void
put_reversed(unsigned char *dst, const unsigned char *src, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        dst[i] = src[n - 1 - i];
    }
}

/* One TUAK kernel run: INOUT from the fields, ``iterations`` permutations, OUT. */
static void
tuak_run(const unsigned char *top, int instance, const unsigned char *rand,
         const unsigned char *amf, const unsigned char *sqn, const unsigned char *k,
         Py_ssize_t klen, int iterations, unsigned char out[200])
{
    static const unsigned char algoname[7] = {'T', 'U', 'A', 'K', '1', '.', '0'};
    unsigned char block[200];
    memset(block, 0, sizeof block);
    put_reversed(block, top, 32);
    block[32] = (unsigned char)instance;
    put_reversed(block + 33, algoname, 7);
    put_reversed(block + 40, rand, 16);
    put_reversed(block + 56, amf, 2);
    put_reversed(block + 58, sqn, 6);
    put_reversed(block + 64, k, klen);
    block[96] = 0x1f;
    block[135] = 0x80;
    uint64_t lanes[25];
    for (int i = 0; i < 25; i++) {
        uint64_t v = 0;
        for (int j = 7; j >= 0; j--) {
            v = (v << 8) | block[8 * i + j];
        }
        lanes[i] = v;
    }
    memset(block, 0, sizeof block); /* K was in it */
    for (int n = 0; n < iterations; n++) {
        keccak_permute(lanes);
    }
    for (int i = 0; i < 25; i++) {
        for (int j = 0; j < 8; j++) {
            out[8 * i + j] = (unsigned char)(lanes[i] >> (8 * j));
        }
    }
}

PyDoc_STRVAR(tuak_kernel_batch_doc,
             "tuak_kernel_batch(topc, k, inst_mac, inst_f2345, rands, sqns, amf, iterations, /)\n"
             "--\n\n"
             "Kernel records (the MILENAGE layout: MAC-A, MAC-S, SQN xor AK, XRES, CK, IK;\n"
             "64 octets each) for TUAK with 64-bit MAC and RES and 128-bit CK and IK,\n"
             "one per 16-octet RAND and 6-octet SQN.");

static PyObject *
tuak_kernel_batch(PyObject *module, PyObject *args)
{
    (void)module;
    Py_buffer topc, k, rands, sqns, amf;
    int inst_mac, inst_f2345, iterations;
    if (!PyArg_ParseTuple(args, "y*y*iiy*y*y*i:tuak_kernel_batch", &topc, &k, &inst_mac,
                          &inst_f2345, &rands, &sqns, &amf, &iterations)) {
        return NULL;
    }
    Py_ssize_t n = rands.len / 16;
    int ok = topc.len == 32 && (k.len == 16 || k.len == 32) && amf.len == 2 && n > 0
             && rands.len == 16 * n && sqns.len == 6 * n && iterations >= 1
             && iterations <= 255 && inst_mac >= 0 && inst_mac <= 0x7f
             && inst_f2345 >= 0 && inst_f2345 <= 255;
    PyObject *result = NULL;
    if (ok) {
        result = PyBytes_FromStringAndSize(NULL, 64 * n);
    }
    if (result != NULL) {
        unsigned char *rec = (unsigned char *)PyBytes_AS_STRING(result);
        const unsigned char *r = rands.buf, *q = sqns.buf;
        static const unsigned char zero[6] = {0};
        unsigned char out[200];
        memset(rec, 0, 64 * n);
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++, rec += 64) {
            const unsigned char *rand = r + 16 * i, *sqn = q + 6 * i;
            tuak_run(topc.buf, inst_mac, rand, amf.buf, sqn, k.buf, k.len, iterations, out);
            put_reversed(rec, out, 8);                       /* MAC-A */
            tuak_run(topc.buf, inst_mac | 0x80, rand, amf.buf, sqn, k.buf, k.len, iterations,
                     out);
            put_reversed(rec + 8, out, 8);                   /* MAC-S */
            tuak_run(topc.buf, inst_f2345, rand, zero, zero, k.buf, k.len, iterations, out);
            put_reversed(rec + 16, out + 96, 6);             /* AK, then xor SQN */
            for (int j = 0; j < 6; j++) {
                rec[16 + j] ^= sqn[j];
            }
            put_reversed(rec + 24, out, 8);                  /* XRES */
            put_reversed(rec + 32, out + 32, 16);            /* CK */
            put_reversed(rec + 48, out + 64, 16);            /* IK */
        }
        Py_END_ALLOW_THREADS
        memset(out, 0, sizeof out);
    }
    PyBuffer_Release(&topc);
    PyBuffer_Release(&k);
    PyBuffer_Release(&rands);
    PyBuffer_Release(&sqns);
    PyBuffer_Release(&amf);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError,
                        "tuak_kernel_batch takes a 32-octet TOPc, 16- or 32-octet K, INSTANCE"
                        " values, 16 and 6 octets per vector, a 2-octet AMF, 1..255 iterations");
    }
    return result;
}

static PyObject *
tuak_core(PyObject *module, PyObject *args)
{
    (void)module;
    Py_buffer top, rand, amf, sqn, k;
    int instance, iterations;
    if (!PyArg_ParseTuple(args, "y*iy*y*y*y*i:tuak_core", &top, &instance, &rand, &amf,
                          &sqn, &k, &iterations)) {
        return NULL;
    }
    int ok = top.len == 32 && rand.len == 16 && amf.len == 2 && sqn.len == 6
             && (k.len == 16 || k.len == 32) && instance >= 0 && instance <= 255
             && iterations >= 1 && iterations <= 255;
    unsigned char block[200];
    if (ok) {
        static const unsigned char algoname[7] = {'T', 'U', 'A', 'K', '1', '.', '0'};
        memset(block, 0, sizeof block);
        put_reversed(block, top.buf, 32);
        block[32] = (unsigned char)instance;
        put_reversed(block + 33, algoname, 7);
        put_reversed(block + 40, rand.buf, 16);
        put_reversed(block + 56, amf.buf, 2);
        put_reversed(block + 58, sqn.buf, 6);
        put_reversed(block + 64, k.buf, k.len);
        block[96] = 0x1f;
        block[135] = 0x80;
    }
    PyBuffer_Release(&top);
    PyBuffer_Release(&rand);
    PyBuffer_Release(&amf);
    PyBuffer_Release(&sqn);
    PyBuffer_Release(&k);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError,
                        "tuak_core takes a 32-octet TOP, INSTANCE 0..255, 16-octet RAND,"
                        " 2-octet AMF, 6-octet SQN, 16- or 32-octet K, 1..255 iterations");
        return NULL;
    }
    uint64_t lanes[25];
    for (int i = 0; i < 25; i++) {
        uint64_t v = 0;
        for (int j = 7; j >= 0; j--) {
            v = (v << 8) | block[8 * i + j];
        }
        lanes[i] = v;
    }
    memset(block, 0, sizeof block); /* K was in it */
    for (int n = 0; n < iterations; n++) {
        keccak_permute(lanes);
    }
    unsigned char out[200];
    for (int i = 0; i < 25; i++) {
        for (int j = 0; j < 8; j++) {
            out[8 * i + j] = (unsigned char)(lanes[i] >> (8 * j));
        }
    }
    return PyBytes_FromStringAndSize((const char *)out, 200);
}

/* -- milenage_eps: one whole EPS vector in one call ------------------------- */

#define K_LEN 16
#define SQN_LEN 6

/* out = E_K(in) for ``len`` octets (whole 16-octet blocks) with a context keyed
 * for AES-128-ECB without padding (ECB keeps no state between calls). */
static int
aes_ecb(EVP_CIPHER_CTX *ctx, const uint8_t *in, int len, uint8_t *out)
{
    int n = 0;
    return EVP_EncryptUpdate(ctx, out, &n, in, len) && n == len;
}

/* The 64-octet record of Milenage.kernel for one (RAND, SQN, AMF): MILENAGE
 * (TS 35.206 §4.1, standard r1..r5 and c1..c5) in two AES calls.
 *   TEMP = E_K(RAND ^ OPc)
 *   OUT1 = E_K(TEMP ^ rot(IN1 ^ OPc, 64) ^ c1) ^ OPc, IN1 = SQN || AMF || SQN || AMF
 *   OUTi = E_K(rot(TEMP ^ OPc, ri) ^ ci) ^ OPc for (r2, c2) = (0, 1), (r3, c3) = (32, 2),
 *          (r4, c4) = (64, 4)
 * Record: MAC-A, MAC-S (OUT1), SQN ^ AK (AK = OUT2[0:6]), 2 octets unused, XRES
 * (OUT2[8:16]), CK (OUT3), IK (OUT4). */
static int
milenage_record(const EVP_CIPHER *aes, const uint8_t k[K_LEN], const uint8_t opc[K_LEN],
                const uint8_t rand[RAND_LEN], const uint8_t sqn[SQN_LEN],
                const uint8_t amf[AMF_LEN], uint8_t rec[RECORD_LEN])
{
    uint8_t x[16];
    uint8_t temp[16];
    uint8_t in[64];
    uint8_t out[64];
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL || !EVP_EncryptInit_ex2(ctx, aes, k, NULL, NULL)
        || !EVP_CIPHER_CTX_set_padding(ctx, 0)) {
        EVP_CIPHER_CTX_free(ctx);
        return 0;
    }
    for (int i = 0; i < 16; i++) {
        x[i] = rand[i] ^ opc[i];
    }
    if (!aes_ecb(ctx, x, 16, temp)) {
        EVP_CIPHER_CTX_free(ctx);
        return 0;
    }
    uint8_t in1[16];
    memcpy(in1, sqn, SQN_LEN);
    memcpy(in1 + SQN_LEN, amf, AMF_LEN);
    memcpy(in1 + 8, in1, 8);
    for (int i = 0; i < 16; i++) {
        x[i] = temp[i] ^ opc[i]; /* TEMP ^ OPc */
        in[i] = temp[i] ^ in1[(i + 8) % 16] ^ opc[(i + 8) % 16];
        in[16 + i] = x[i];
    }
    for (int i = 0; i < 16; i++) {
        in[32 + i] = x[(i + 4) % 16];  /* rot 32 bits */
        in[48 + i] = x[(i + 8) % 16];  /* rot 64 bits */
    }
    in[31] ^= 1;
    in[47] ^= 2;
    in[63] ^= 4;
    int ok = aes_ecb(ctx, in, 64, out);
    EVP_CIPHER_CTX_free(ctx); /* frees the key schedule too */
    if (!ok) {
        return 0;
    }
    for (int i = 0; i < 64; i++) {
        out[i] ^= opc[i % 16];
    }
    memcpy(rec, out, 16); /* MAC-A, MAC-S */
    for (int i = 0; i < SQN_AK_LEN; i++) {
        rec[OFF_SQN_AK + i] = sqn[i] ^ out[16 + i];
    }
    rec[22] = rec[23] = 0;
    memcpy(rec + OFF_XRES, out + 24, XRES_LEN);
    memcpy(rec + OFF_CK_IK, out + 32, 32);
    OPENSSL_cleanse(temp, sizeof temp);
    OPENSSL_cleanse(out, sizeof out);
    return 1;
}

PyDoc_STRVAR(milenage_eps_doc,
             "milenage_eps(k, opc, rand, sqn, amf, sn_id, cls, /)\n--\n\n"
             "One EPS-AKA vector ``cls(RAND, XRES, AUTN, K_ASME)`` in one call: MILENAGE\n"
             "f1-f5 (TS 35.206, standard constants) under K and OPc for RAND, SQN and the\n"
             "AMF as given, and K_ASME (TS 33.401 A.2) for the 3-octet serving network id.\n"
             "The same vector as Milenage.kernel followed by eps_batch.");

static PyObject *
milenage_eps(PyObject *module, PyObject *args)
{
    Py_buffer k, opc, rand, sqn, amf, sn_id;
    PyObject *cls;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*O:milenage_eps", &k, &opc, &rand, &sqn, &amf,
                          &sn_id, &cls)) {
        return NULL;
    }
    PyObject *result = NULL;
    if (!check_exact("k", k.len, K_LEN) || !check_exact("opc", opc.len, K_LEN)
        || !check_exact("rand", rand.len, RAND_LEN) || !check_exact("sqn", sqn.len, SQN_LEN)
        || !check_exact("amf", amf.len, AMF_LEN) || !check_exact("sn_id", sn_id.len, SN_ID_LEN)
        || !check_tuple_type(cls)) {
        goto done;
    }
    native_state *st = state_of(module);
    uint8_t rec[RECORD_LEN];
    uint8_t kasme[DIGEST_LEN];
    uint8_t autn[AUTN_LEN];
    if (!milenage_record(st->aes128, k.buf, opc.buf, rand.buf, sqn.buf, amf.buf, rec)) {
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL AES-128 failed");
        goto done;
    }
    if (hash_kasme(st->sha256, rec, rand.buf, sn_id.buf, SN_ID_LEN, 1, kasme)) {
        autn_of(rec, amf.buf, autn);
        result = eps_record((PyTypeObject *)cls, rand.buf, rec, autn, kasme);
    }
    else {
        openssl_failed();
    }
    OPENSSL_cleanse(rec, sizeof rec); /* CK || IK */
    OPENSSL_cleanse(kasme, sizeof kasme);
done:
    PyBuffer_Release(&k);
    PyBuffer_Release(&opc);
    PyBuffer_Release(&rand);
    PyBuffer_Release(&sqn);
    PyBuffer_Release(&amf);
    PyBuffer_Release(&sn_id);
    return result;
}

/* -- module --------------------------------------------------------------- */

static PyMethodDef native_methods[] = {
    {"eps_batch", eps_batch, METH_VARARGS, eps_batch_doc},
    {"he_av_batch", he_av_batch, METH_VARARGS, he_av_batch_doc},
    {"hmac_sha256_batch", hmac_sha256_batch, METH_VARARGS, hmac_sha256_batch_doc},
    {"keccak_f1600", keccak_f1600, METH_VARARGS, keccak_f1600_doc},
    {"milenage_eps", milenage_eps, METH_VARARGS, milenage_eps_doc},
    {"tuak_core", tuak_core, METH_VARARGS, tuak_core_doc},
    {"tuak_kernel_batch", tuak_kernel_batch, METH_VARARGS, tuak_kernel_batch_doc},
    {NULL, NULL, 0, NULL},
};

static void
native_free(void *module)
{
    native_state *st = state_of((PyObject *)module);
    if (st != NULL) {
        EVP_MD_free(st->sha256);
        st->sha256 = NULL;
        EVP_CIPHER_free(st->aes128);
        st->aes128 = NULL;
    }
}

PyDoc_STRVAR(native_doc,
             "Batched HMAC-SHA-256 for the AKA key derivations (TS 33.220 B.2; K_ASME per\n"
             "TS 33.401 A.2, XRES* and K_AUSF per TS 33.501 A.4 and A.2), on OpenSSL's\n"
             "SHA-256; vectors.py uses it when it is built and keeps the Python reference.");

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    "simtrust.subscriber.auc._native",
    native_doc,
    sizeof(native_state),
    native_methods,
    NULL,
    NULL,
    NULL,
    native_free,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    PyObject *m = PyModule_Create(&native_module);
    if (m == NULL) {
        return NULL;
    }
    native_state *st = state_of(m);
    st->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (st->sha256 == NULL) {
        Py_DECREF(m);
        PyErr_SetString(PyExc_ImportError, "OpenSSL offers no SHA-256 implementation");
        return NULL;
    }
    st->aes128 = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
    if (st->aes128 == NULL) {
        Py_DECREF(m);
        PyErr_SetString(PyExc_ImportError, "OpenSSL offers no AES-128-ECB implementation");
        return NULL;
    }
    PyObject *all = Py_BuildValue("[sss]", "eps_batch", "he_av_batch", "hmac_sha256_batch");
    if (all == NULL || PyModule_AddObject(m, "__all__", all) < 0) {
        Py_XDECREF(all);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
