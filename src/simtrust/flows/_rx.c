/*
 * Receiving and decoding IPFIX (RFC 7011) and NetFlow v9 (RFC 3954) datagrams
 * in batches, without a Python object per datagram or per record.
 *
 * recv_batch() takes up to N queued datagrams from a UDP socket with one
 * recvmmsg(2) call into one buffer of 65,536-octet slots (the GIL released
 * while it waits), and names each sender "host:port" through a cache.
 *
 * decode_datagrams() decodes, in order, the datagrams of such a batch that
 * carry only data sets of known fixed-length templates in the common IPv4 shape
 * (RFC 7011 §3.4.3 / RFC 3954 §5.3: every record at the same offsets; RFC 7011
 * §6.2 reduced-size unsigned integers; times in milliseconds, absolute
 * (flowStartMilliseconds, §5.10) or since system start (§5.11, RFC 3954 §8)).
 * Records go to columns (typed arrays, one bytes object per field per call).
 * It stops, without any side effect, at the first datagram it cannot take
 * whole (template or options sets, unknown or expired templates, other shapes,
 * malformed framing, a counter that would not fit 64 bits once scaled by the
 * sampling interval): the Python decoder (the reference) takes that datagram
 * and the next call resumes after it. For the datagrams it takes it keeps the
 * Python decoder's state exactly as the Python path would: sequence accounting
 * (RFC 7011 §3.1 records, RFC 3954 §5.1 packets) through the same
 * SequenceState objects, message and record counts returned to the caller.
 *
 * Every argument is checked before a byte is read: slot bounds, template
 * layouts (offsets inside the record, lengths 4 for addresses and 1..8 for
 * integers); bad arguments raise ValueError or TypeError.
 */

#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "_flowcommon.h"

#define SLOT 65536
#define MAX_BATCH 128
#define MAX_SETS 64


/* Time kinds of a layout: absolute milliseconds; milliseconds since system start;
 * the same with a per-record systemInitTimeMilliseconds (NetFlow v9 only). */
enum { T_ABS_MS = 0, T_UPTIME = 1, T_UPTIME_SYSINIT = 2 };

static unsigned
be16(const unsigned char *p)
{
    return ((unsigned)p[0] << 8) | p[1];
}

static uint32_t
be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* -- receiving ----------------------------------------------------------------------- */

/* "host:port" of a sender, as f"{addr[0]}:{addr[1]}" of Python's recvfrom. New ref. */
static PyObject *
sender_name(const struct sockaddr_storage *sa)
{
    char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    unsigned port;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        if (inet_ntop(AF_INET, &in->sin_addr, host, sizeof host) == NULL)
            return PyErr_SetFromErrno(PyExc_OSError);
        port = ntohs(in->sin_port);
    }
    else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (inet_ntop(AF_INET6, &in6->sin6_addr, host, INET6_ADDRSTRLEN) == NULL)
            return PyErr_SetFromErrno(PyExc_OSError);
        if (in6->sin6_scope_id) {
            char ifname[IF_NAMESIZE];
            size_t used = strlen(host);
            if (if_indextoname(in6->sin6_scope_id, ifname) != NULL)
                snprintf(host + used, sizeof host - used, "%%%s", ifname);
            else
                snprintf(host + used, sizeof host - used, "%%%u", in6->sin6_scope_id);
        }
        port = ntohs(in6->sin6_port);
    }
    else {
        return PyUnicode_FromFormat("family-%d:0", (int)sa->ss_family);
    }
    return PyUnicode_FromFormat("%s:%u", host, port);
}

static PyObject *
cached_sender(PyObject *names, const struct sockaddr_storage *sa, socklen_t len)
{
    PyObject *key = PyBytes_FromStringAndSize((const char *)sa, len);
    if (key == NULL)
        return NULL;
    PyObject *name = cache_find(names, key);
    if (name != NULL || PyErr_Occurred()) {
        Py_DECREF(key);
        return name;
    }
    if (PyDict_GET_SIZE(names) > 65536)
        PyDict_Clear(names);
    return cache_keep(names, key, sender_name(sa));
}

PyDoc_STRVAR(recv_batch_doc,
"recv_batch(fd, buffer, max, timeout_ms, names) -> (lengths, senders)\n\n"
"Wait up to timeout_ms for the socket fd to be readable (the GIL released), then\n"
"take up to max queued datagrams with one recvmmsg(2): datagram i lands at\n"
"buffer[i * 65536:]. Returns their lengths and sender names (\"host:port\", cached\n"
"in the dict names by raw socket address); both empty on timeout or EINTR.");

static PyObject *
recv_batch(PyObject *self, PyObject *args)
{
    int fd, max, timeout_ms;
    Py_buffer buf;
    PyObject *names;
    if (!PyArg_ParseTuple(args, "iw*iiO!", &fd, &buf, &max, &timeout_ms, &PyDict_Type, &names))
        return NULL;
    PyObject *result = NULL, *lengths = NULL, *senders = NULL;
    if (max < 1 || max > MAX_BATCH || buf.len < (Py_ssize_t)max * SLOT) {
        PyErr_SetString(PyExc_ValueError, "max out of range or buffer too small");
        goto done;
    }
    struct mmsghdr msgs[MAX_BATCH];
    struct iovec iov[MAX_BATCH];
    struct sockaddr_storage addrs[MAX_BATCH];
    memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)max);
    for (int i = 0; i < max; i++) {
        iov[i].iov_base = (char *)buf.buf + (Py_ssize_t)i * SLOT;
        iov[i].iov_len = SLOT;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &addrs[i];
        msgs[i].msg_hdr.msg_namelen = sizeof addrs[i];
    }
    int n = 0, err = 0;
    Py_BEGIN_ALLOW_THREADS
    struct pollfd pfd = {fd, POLLIN, 0};
    int r = poll(&pfd, 1, timeout_ms);
    if (r > 0) {
        n = recvmmsg(fd, msgs, (unsigned)max, MSG_DONTWAIT, NULL);
        if (n < 0)
            err = errno;
    }
    else if (r < 0) {
        n = -1;
        err = errno;
    }
    Py_END_ALLOW_THREADS
    if (n < 0) {
        if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
            errno = err;
            PyErr_SetFromErrno(PyExc_OSError);
            goto done;
        }
        n = 0;
    }
    lengths = PyList_New(n);
    senders = PyList_New(n);
    if (lengths == NULL || senders == NULL)
        goto done;
    for (int i = 0; i < n; i++) {
        PyObject *len = PyLong_FromUnsignedLong(msgs[i].msg_len);
        if (len == NULL)
            goto done;
        PyList_SET_ITEM(lengths, i, len);
        PyObject *name = cached_sender(names, &addrs[i], msgs[i].msg_hdr.msg_namelen);
        if (name == NULL)
            goto done;
        PyList_SET_ITEM(senders, i, name);
    }
    result = PyTuple_Pack(2, lengths, senders);
done:
    Py_XDECREF(lengths);
    Py_XDECREF(senders);
    PyBuffer_Release(&buf);
    return result;
}

/* -- decoding ------------------------------------------------------------------------ */

typedef struct {
    Py_ssize_t n, cap;
    double *start, *end;
    uint32_t *src, *dst, *dgram;
    uint64_t *sport, *dport, *proto, *pkts, *octs, *flags;
} columns;

#define N_COLS 12

static void
columns_free(columns *c)
{
    PyMem_Free(c->start);
    PyMem_Free(c->end);
    PyMem_Free(c->src);
    PyMem_Free(c->dst);
    PyMem_Free(c->dgram);
    PyMem_Free(c->sport);
    PyMem_Free(c->dport);
    PyMem_Free(c->proto);
    PyMem_Free(c->pkts);
    PyMem_Free(c->octs);
    PyMem_Free(c->flags);
}

static int
grow(void **p, Py_ssize_t cap, size_t item)
{
    void *q = PyMem_Realloc(*p, (size_t)cap * item);
    if (q == NULL)
        return -1;
    *p = q;
    return 0;
}

static int
columns_reserve(columns *c, Py_ssize_t more)
{
    if (c->n + more <= c->cap)
        return 0;
    Py_ssize_t cap = c->cap ? c->cap : 256;
    while (cap < c->n + more)
        cap *= 2;
    if (grow((void **)&c->start, cap, 8) || grow((void **)&c->end, cap, 8)
        || grow((void **)&c->src, cap, 4) || grow((void **)&c->dst, cap, 4)
        || grow((void **)&c->dgram, cap, 4) || grow((void **)&c->sport, cap, 8)
        || grow((void **)&c->dport, cap, 8) || grow((void **)&c->proto, cap, 8)
        || grow((void **)&c->pkts, cap, 8) || grow((void **)&c->octs, cap, 8)
        || grow((void **)&c->flags, cap, 8)) {
        PyErr_NoMemory();
        return -1;
    }
    c->cap = cap;
    return 0;
}

/* (n, start, end, src, dst, sport, dport, proto, packets, octets, flags, datagram) */
static PyObject *
columns_tuple(const columns *c)
{
    Py_ssize_t n = c->n;
    return Py_BuildValue("(ny#y#y#y#y#y#y#y#y#y#y#)", n,
                         (const char *)c->start, n * 8, (const char *)c->end, n * 8,
                         (const char *)c->src, n * 4, (const char *)c->dst, n * 4,
                         (const char *)c->sport, n * 8, (const char *)c->dport, n * 8,
                         (const char *)c->proto, n * 8, (const char *)c->pkts, n * 8,
                         (const char *)c->octs, n * 8, (const char *)c->flags, n * 8,
                         (const char *)c->dgram, n * 4);
}

typedef struct {
    Py_ssize_t record_len;
    int kind;
    double learned_at;
    Py_ssize_t off[N_FIELDS], len[N_FIELDS];
} layout;

/* A template's `fast` tuple: (record_len, kind, learned_at, 10 x (offset, length)).
 * 1: parsed; 0: None (not the common shape); -1: error set. */
static int
parse_layout(PyObject *fast, layout *l)
{
    if (fast == Py_None)
        return 0;
    if (!PyTuple_Check(fast) || PyTuple_GET_SIZE(fast) != 3 + 2 * N_FIELDS) {
        PyErr_SetString(PyExc_TypeError, "template layout must be a 23-tuple");
        return -1;
    }
    l->record_len = PyLong_AsSsize_t(PyTuple_GET_ITEM(fast, 0));
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(fast, 1));
    l->learned_at = PyFloat_AsDouble(PyTuple_GET_ITEM(fast, 2));
    if (PyErr_Occurred())
        return -1;
    if (l->record_len <= 0 || l->record_len > 65535 || kind < T_ABS_MS
        || kind > T_UPTIME_SYSINIT) {
        PyErr_SetString(PyExc_ValueError, "template layout out of range");
        return -1;
    }
    l->kind = (int)kind;
    for (int i = 0; i < N_FIELDS; i++) {
        l->off[i] = PyLong_AsSsize_t(PyTuple_GET_ITEM(fast, 3 + 2 * i));
        l->len[i] = PyLong_AsSsize_t(PyTuple_GET_ITEM(fast, 4 + 2 * i));
        if (PyErr_Occurred())
            return -1;
        if (check_field(i, l->off[i], l->len[i], l->record_len) < 0)
            return -1;
    }
    return 1;
}

typedef struct {
    PyObject *templates, *sampling, *sysinit, *sequence, *seq_cls;
    double timeout;
} dstate;

typedef struct {
    Py_ssize_t s, e;
    unsigned set_id;
    layout lay;
} dset;

/* Look a value up by (a, b) or (a, b, c): borrowed reference, NULL (no error) when absent. */
static PyObject *
lookup(PyObject *dict, PyObject *key)
{
    PyObject *v = PyDict_GetItemWithError(dict, key);
    return v;
}

/* Decode one datagram if it can be taken whole. 1: taken; 0: leave it to Python (no
 * side effect); -1: error. *records receives the record count. */
static int
one_datagram(const unsigned char *p, Py_ssize_t len, PyObject *exporter, uint32_t index,
             double now, const dstate *st, columns *cols, Py_ssize_t *records)
{
    if (len < 16)
        return 0;
    unsigned version = be16(p);
    Py_ssize_t head;
    uint32_t export_secs, seq, domain, uptime = 0;
    if (version == 10) {
        head = 16;
        if ((Py_ssize_t)be16(p + 2) != len)
            return 0;
        export_secs = be32(p + 4);
        seq = be32(p + 8);
        domain = be32(p + 12);
    }
    else if (version == 9) {
        head = 20;
        if (len < 20)
            return 0;
        uptime = be32(p + 4);
        export_secs = be32(p + 8);
        seq = be32(p + 12);
        domain = be32(p + 16);
    }
    else {
        return 0;
    }
    dset sets[MAX_SETS];
    int nsets = 0;
    Py_ssize_t pos = head;
    while (pos < len) {
        if (len - pos < 4 || nsets == MAX_SETS)
            return 0;
        unsigned set_id = be16(p + pos);
        Py_ssize_t slen = be16(p + pos + 2);
        if (slen < 4 || pos + slen > len || set_id < 256)
            return 0;
        sets[nsets].s = pos + 4;
        sets[nsets].e = pos + slen;
        sets[nsets].set_id = set_id;
        nsets++;
        pos += slen;
    }
    int rc = -1;
    PyObject *dom = NULL, *stream = NULL, *key = NULL, *sid = NULL, *fast = NULL;
    dom = PyLong_FromUnsignedLong(domain);
    if (dom == NULL)
        goto out;
    stream = PyTuple_Pack(2, exporter, dom);
    if (stream == NULL)
        goto out;
    for (int k = 0; k < nsets; k++) {
        sid = PyLong_FromUnsignedLong(sets[k].set_id);
        if (sid == NULL)
            goto out;
        key = PyTuple_Pack(3, exporter, dom, sid);
        Py_CLEAR(sid);
        if (key == NULL)
            goto out;
        PyObject *tpl = lookup(st->templates, key);
        Py_CLEAR(key);
        if (tpl == NULL) {
            rc = PyErr_Occurred() ? -1 : 0;
            goto out;
        }
        fast = PyObject_GetAttrString(tpl, "fast");
        if (fast == NULL)
            goto out;
        int ok = parse_layout(fast, &sets[k].lay);
        Py_CLEAR(fast);
        if (ok <= 0) {
            rc = ok;
            goto out;
        }
        if (now - sets[k].lay.learned_at > st->timeout
            || (version == 10 && sets[k].lay.kind == T_UPTIME_SYSINIT)) {
            rc = 0;
            goto out;
        }
    }
    /* the time base and the sampling interval of the stream, as the Python path has them */
    double base_uptime;
    if (version == 9) {
        base_uptime = (double)export_secs - (double)uptime / 1000.0;
    }
    else {
        PyObject *sysinit = st->sysinit != Py_None ? lookup(st->sysinit, stream) : NULL;
        if (sysinit == NULL && PyErr_Occurred())
            goto out;
        if (sysinit != NULL) {
            if (!PyLong_Check(sysinit)) {
                rc = 0;
                goto out;
            }
            double v = PyLong_AsDouble(sysinit);
            if (v == -1.0 && PyErr_Occurred()) {
                PyErr_Clear();
                rc = 0;
                goto out;
            }
            base_uptime = v / 1000.0;
        }
        else {
            base_uptime = (double)export_secs;
        }
    }
    uint64_t scale = 1;
    if (st->sampling != Py_None) {
        PyObject *s = lookup(st->sampling, stream);
        if (s == NULL && PyErr_Occurred())
            goto out;
        if (s != NULL) {
            if (!PyLong_Check(s)) {
                rc = 0;
                goto out;
            }
            int overflow = 0;
            long long v = PyLong_AsLongLongAndOverflow(s, &overflow);
            if (v == -1 && PyErr_Occurred())
                goto out;
            if (overflow) {
                rc = 0;
                goto out;
            }
            if (v > 1)
                scale = (uint64_t)v;
        }
    }
    Py_ssize_t saved = cols->n, total = 0;
    for (int k = 0; k < nsets; k++) {
        const layout *l = &sets[k].lay;
        Py_ssize_t n = (sets[k].e - sets[k].s) / l->record_len;
        if (columns_reserve(cols, n) < 0)
            goto rollback;
        double base = l->kind == T_ABS_MS ? 0.0 : base_uptime;
        const unsigned char *r = p + sets[k].s;
        for (Py_ssize_t j = 0; j < n; j++, r += l->record_len) {
            Py_ssize_t at = cols->n;
            uint64_t pk = read_be(r + l->off[F_PKTS], l->len[F_PKTS]);
            uint64_t oc = read_be(r + l->off[F_OCTS], l->len[F_OCTS]);
            if (scale > 1 && (__builtin_mul_overflow(pk, scale, &pk)
                              || __builtin_mul_overflow(oc, scale, &oc))) {
                cols->n = saved;  /* the Python path keeps the exact (big) integers */
                rc = 0;
                goto out;
            }
            cols->start[at] = base + (double)read_be(r + l->off[F_START], l->len[F_START]) / 1000.0;
            cols->end[at] = base + (double)read_be(r + l->off[F_END], l->len[F_END]) / 1000.0;
            memcpy(&cols->src[at], r + l->off[F_SRC], 4);
            memcpy(&cols->dst[at], r + l->off[F_DST], 4);
            cols->sport[at] = read_be(r + l->off[F_SPORT], l->len[F_SPORT]);
            cols->dport[at] = read_be(r + l->off[F_DPORT], l->len[F_DPORT]);
            cols->proto[at] = read_be(r + l->off[F_PROTO], l->len[F_PROTO]);
            cols->pkts[at] = pk;
            cols->octs[at] = oc;
            cols->flags[at] = read_be(r + l->off[F_FLAGS], l->len[F_FLAGS]);
            cols->dgram[at] = index;
            cols->n = at + 1;
        }
        total += n;
    }
    /* sequence accounting, through the decoder's own SequenceState objects */
    {
        PyObject *ver = PyLong_FromUnsignedLong(version);
        if (ver == NULL)
            goto rollback;
        key = PyTuple_Pack(3, exporter, ver, dom);
        Py_DECREF(ver);
        if (key == NULL)
            goto rollback;
        PyObject *state = lookup(st->sequence, key);
        if (state != NULL) {
            Py_INCREF(state);
        }
        else {
            if (PyErr_Occurred())
                goto rollback;
            state = PyObject_CallNoArgs(st->seq_cls);
            if (state == NULL)
                goto rollback;
            if (PyDict_SetItem(st->sequence, key, state) < 0) {
                Py_DECREF(state);
                goto rollback;
            }
        }
        PyObject *r = PyObject_CallMethod(state, "observe", "kn", (unsigned long)seq,
                                          version == 10 ? total : (Py_ssize_t)1);
        Py_DECREF(state);
        if (r == NULL)
            goto rollback;
        Py_DECREF(r);
    }
    *records = total;
    rc = 1;
    goto out;
rollback:
    cols->n = saved;
    rc = -1;
out:
    Py_XDECREF(dom);
    Py_XDECREF(stream);
    Py_XDECREF(key);
    Py_XDECREF(sid);
    Py_XDECREF(fast);
    return rc;
}

PyDoc_STRVAR(decode_datagrams_doc,
"decode_datagrams(buffer, lengths, senders, first, now, state)\n"
"    -> (next, columns or None, messages, records)\n\n"
"Decode datagrams first, first+1, ... of a recv_batch buffer while each is made only\n"
"of data sets of known fixed-length IPv4 templates; stop at the first one that is\n"
"not (next is its index; the Python decoder takes it). state is (templates,\n"
"sampling or None, sysinit, sequence, SequenceState, template_timeout). columns:\n"
"(n, start, end, src, dst, sport, dport, proto, packets, octets, flags, datagram) as\n"
"bytes: float64 times, 4-octet addresses in network order, uint64 integers, uint32\n"
"datagram indexes, all in native byte order.");

static PyObject *
decode_datagrams(PyObject *self, PyObject *args)
{
    Py_buffer buf;
    PyObject *lengths, *senders, *state;
    Py_ssize_t first;
    double now;
    if (!PyArg_ParseTuple(args, "y*O!O!ndO!", &buf, &PyList_Type, &lengths, &PyList_Type,
                          &senders, &first, &now, &PyTuple_Type, &state))
        return NULL;
    PyObject *result = NULL;
    columns cols;
    memset(&cols, 0, sizeof cols);
    dstate st;
    Py_ssize_t count = PyList_GET_SIZE(lengths), i, messages = 0, records = 0;
    if (PyList_GET_SIZE(senders) != count || first < 0 || first > count
        || buf.len / SLOT < count) {
        PyErr_SetString(PyExc_ValueError, "lengths, senders and buffer do not match");
        goto done;
    }
    if (PyTuple_GET_SIZE(state) != 6) {
        PyErr_SetString(PyExc_ValueError, "state must be a 6-tuple");
        goto done;
    }
    st.templates = PyTuple_GET_ITEM(state, 0);
    st.sampling = PyTuple_GET_ITEM(state, 1);
    st.sysinit = PyTuple_GET_ITEM(state, 2);
    st.sequence = PyTuple_GET_ITEM(state, 3);
    st.seq_cls = PyTuple_GET_ITEM(state, 4);
    st.timeout = PyFloat_AsDouble(PyTuple_GET_ITEM(state, 5));
    if (st.timeout == -1.0 && PyErr_Occurred())
        goto done;
    if (!PyDict_Check(st.templates) || !PyDict_Check(st.sequence) || !PyDict_Check(st.sysinit)
        || (st.sampling != Py_None && !PyDict_Check(st.sampling)) || !PyCallable_Check(st.seq_cls)) {
        PyErr_SetString(PyExc_TypeError, "state holds the wrong types");
        goto done;
    }
    for (i = first; i < count; i++) {
        Py_ssize_t len = PyLong_AsSsize_t(PyList_GET_ITEM(lengths, i));
        if (len == -1 && PyErr_Occurred())
            goto done;
        if (len < 0 || len > SLOT) {
            PyErr_SetString(PyExc_ValueError, "datagram length out of range");
            goto done;
        }
        PyObject *exporter = PyList_GET_ITEM(senders, i);
        if (!PyUnicode_Check(exporter)) {
            PyErr_SetString(PyExc_TypeError, "senders must be str");
            goto done;
        }
        Py_ssize_t got = 0;
        int rc = one_datagram((const unsigned char *)buf.buf + i * SLOT, len, exporter,
                              (uint32_t)i, now, &st, &cols, &got);
        if (rc < 0)
            goto done;
        if (rc == 0)
            break;
        messages++;
        records += got;
    }
    if (cols.n > 0) {
        PyObject *ct = columns_tuple(&cols);
        if (ct == NULL)
            goto done;
        result = Py_BuildValue("(nNnn)", i, ct, messages, records);
    }
    else {
        result = Py_BuildValue("(nOnn)", i, Py_None, messages, records);
    }
done:
    columns_free(&cols);
    PyBuffer_Release(&buf);
    return result;
}

static int
column(PyObject *cols, int i, Py_ssize_t n, Py_ssize_t item, Py_buffer *view)
{
    if (PyObject_GetBuffer(PyTuple_GET_ITEM(cols, i), view, PyBUF_SIMPLE) < 0)
        return -1;
    if (view->len != n * item) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "column of the wrong size");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(to_records_doc,
"to_records(columns, senders, names, cls, out) -> int\n\n"
"Append one cls tuple per record of a decode_datagrams columns tuple to out:\n"
"(start, end, src, dst, sport, dport, proto, packets, octets, flags, exporter, None),\n"
"the exporter being senders[datagram], addresses dotted quads shared through the\n"
"cache dict names. Returns the count.");

static PyObject *
to_records(PyObject *self, PyObject *args)
{
    PyObject *cols, *senders, *names, *cls, *out;
    if (!PyArg_ParseTuple(args, "O!O!O!OO!", &PyTuple_Type, &cols, &PyList_Type, &senders,
                          &PyDict_Type, &names, &cls, &PyList_Type, &out))
        return NULL;
    if (check_record_class(cls) < 0)
        return NULL;
    if (PyTuple_GET_SIZE(cols) != N_COLS) {
        PyErr_SetString(PyExc_ValueError, "columns must be a 12-tuple");
        return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(PyTuple_GET_ITEM(cols, 0));
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "negative record count");
        return NULL;
    }
    static const Py_ssize_t item[N_COLS] = {0, 8, 8, 4, 4, 8, 8, 8, 8, 8, 8, 4};
    Py_buffer v[N_COLS];
    int got = 0;
    PyObject *result = NULL;
    for (got = 1; got < N_COLS; got++)
        if (column(cols, got, n, item[got], &v[got]) < 0)
            goto done;
    PyTypeObject *type = (PyTypeObject *)cls;
    const double *start = v[1].buf, *end = v[2].buf;
    const unsigned char *src = v[3].buf, *dst = v[4].buf;
    const uint64_t *ints[6] = {v[5].buf, v[6].buf, v[7].buf, v[8].buf, v[9].buf, v[10].buf};
    const uint32_t *dgram = v[11].buf;
    Py_ssize_t nsenders = PyList_GET_SIZE(senders);
    for (Py_ssize_t k = 0; k < n; k++) {
        if (dgram[k] >= (uint64_t)nsenders) {
            PyErr_SetString(PyExc_ValueError, "datagram index outside senders");
            goto done;
        }
        PyObject *rec = type->tp_alloc(type, 12);
        if (rec == NULL)
            goto done;
        int bad = 0;
        FLOW_PUT(rec, bad, 0, PyFloat_FromDouble(start[k]));
        FLOW_PUT(rec, bad, 1, PyFloat_FromDouble(end[k]));
        FLOW_PUT(rec, bad, 2, address(names, src + 4 * k));
        FLOW_PUT(rec, bad, 3, address(names, dst + 4 * k));
        for (int j = 0; j < 6; j++)
            FLOW_PUT(rec, bad, 4 + j, PyLong_FromUnsignedLongLong(ints[j][k]));
        if (append_record(out, rec, bad, PyList_GET_ITEM(senders, dgram[k])) < 0)
            goto done;
    }
    result = PyLong_FromSsize_t(n);
done:
    for (int i = 1; i < got; i++)
        PyBuffer_Release(&v[i]);
    return result;
}

static PyMethodDef methods[] = {
    {"recv_batch", recv_batch, METH_VARARGS, recv_batch_doc},
    {"decode_datagrams", decode_datagrams, METH_VARARGS, decode_datagrams_doc},
    {"to_records", to_records, METH_VARARGS, to_records_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef rx_module = {
    PyModuleDef_HEAD_INIT,
    "simtrust.flows._rx",
    "Batched receive (recvmmsg) and columnar decoding of IPFIX / NetFlow v9 datagrams.",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__rx(void)
{
    PyObject *m = PyModule_Create(&rx_module);
    if (m != NULL && (PyModule_AddIntConstant(m, "SLOT", SLOT) < 0
                      || PyModule_AddIntConstant(m, "MAX_BATCH", MAX_BATCH) < 0)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
