/*
 * Pieces shared by the two flow extensions, _native.c (bulk decoding of one
 * data set) and _rx.c (batched receive and columnar decoding): the field slots
 * of the common IPv4 layout (RFC 7011 §8: the template fixes every record's
 * offsets), reduced-size unsigned big-endian integers (RFC 7011 §6.2), the
 * checks of a layout's fields and of the record class, the str cache keyed by
 * bytes, and the filling of one 12-item FlowRecord tuple.
 *
 * Everything is static: each extension gets its own copy, so neither module
 * depends on the other at run time. Include after <Python.h>.
 */

#ifndef SIMTRUST_FLOWCOMMON_H
#define SIMTRUST_FLOWCOMMON_H

#include <stdint.h>
#include <stdio.h>

/* Field slots, in the order of a layout's (offset, length) pairs. */
enum { F_SRC, F_DST, F_START, F_END, F_SPORT, F_DPORT, F_PROTO, F_PKTS, F_OCTS, F_FLAGS,
       N_FIELDS };

static uint64_t
read_be(const unsigned char *p, Py_ssize_t len)
{
    uint64_t v = 0;
    for (Py_ssize_t i = 0; i < len; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Field i of a layout: addresses 4 octets, integers 1 to 8, inside the record.
 * 0, or -1 with ValueError set. */
static int
check_field(int i, Py_ssize_t off, Py_ssize_t len, Py_ssize_t record_len)
{
    int is_addr = i == F_SRC || i == F_DST;
    if (off < 0 || (is_addr ? len != 4 : (len < 1 || len > 8)) || off + len > record_len) {
        PyErr_SetString(PyExc_ValueError, "field outside the record or of a bad length");
        return -1;
    }
    return 0;
}

/* 0 when cls is a tuple subclass (the records' class), else -1 with TypeError set. */
static int
check_record_class(PyObject *cls)
{
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "cls must be a tuple subclass");
        return -1;
    }
    return 0;
}

/* The str cached under key in the dict names: a new reference, or NULL, with an
 * error set on failure and without one when key is absent. */
static PyObject *
cache_find(PyObject *names, PyObject *key)
{
    PyObject *name = PyDict_GetItemWithError(names, key);
    Py_XINCREF(name);
    return name;
}

/* Cache name (a new reference; NULL after a failed build) under key and hand it
 * back; key's reference is dropped. NULL with an error set on failure. */
static PyObject *
cache_keep(PyObject *names, PyObject *key, PyObject *name)
{
    if (name != NULL && PyDict_SetItem(names, key, name) < 0)
        Py_CLEAR(name);
    Py_DECREF(key);
    return name;
}

/* The dotted quad of a 4-octet address (what socket.inet_ntoa returns), through
 * the cache dict: equal addresses share one str. New reference or NULL. */
static PyObject *
address(PyObject *names, const unsigned char *p)
{
    PyObject *key = PyBytes_FromStringAndSize((const char *)p, 4);
    if (key == NULL)
        return NULL;
    PyObject *name = cache_find(names, key);
    if (name != NULL || PyErr_Occurred()) {
        Py_DECREF(key);
        return name;
    }
    char text[16];
    int n = snprintf(text, sizeof text, "%u.%u.%u.%u", p[0], p[1], p[2], p[3]);
    return cache_keep(names, key, PyUnicode_FromStringAndSize(text, n));
}

/* Set item i of the record tuple rec to expr (a new reference) unless an earlier
 * item failed; a NULL expr marks the record bad and later items are not made. */
#define FLOW_PUT(rec, bad, i, expr)                                                       \
    do {                                                                                  \
        if (!(bad)) {                                                                     \
            PyObject *item_ = (expr);                                                     \
            if (item_ == NULL)                                                            \
                (bad) = 1;                                                                \
            else                                                                          \
                PyTuple_SET_ITEM((rec), (i), item_);                                      \
        }                                                                                 \
    } while (0)

/* Fill items 10 and 11 (exporter, None) of a record whose first ten items were
 * made (bad == 0), append it to out and drop it. 0, or -1 with an error set. */
static int
append_record(PyObject *out, PyObject *rec, int bad, PyObject *exporter)
{
    if (!bad) {
        Py_INCREF(exporter);
        PyTuple_SET_ITEM(rec, 10, exporter);
        Py_INCREF(Py_None);
        PyTuple_SET_ITEM(rec, 11, Py_None);
    }
    int rc = bad || PyList_Append(out, rec) < 0 ? -1 : 0;
    Py_DECREF(rec);
    return rc;
}

#endif /* SIMTRUST_FLOWCOMMON_H */
