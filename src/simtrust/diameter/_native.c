/* The Diameter AVP walk in C (simtrust.diameter._native).
 *
 * decode_avps(data, depth) walks a run of AVPs (RFC 6733 §4.1, grouped AVPs of
 * §4.4 recursively) exactly as simtrust.diameter._codec's Python decoder does:
 * every header length within the data, the padding within the data, no
 * reserved flag bits, no unknown AVP with the M-bit, the dictionary's
 * fixed-size, UTF-8, address and grouped checks, at most max_avps AVPs per
 * run and max_depth nesting levels. It returns the same list of Avp named
 * tuples (code, data, vendor, mandatory) when every check holds, and None
 * when any fails: the Python decoder then decodes the same octets again and
 * raises the RFC 6733 §7 error (result code, Failed-AVP), so the errors come
 * from one place only.
 *
 * Why C and no library: the Python Diameter packages (python-diameter,
 * pydiameter, bromelia) build per-command objects in Python and raise generic
 * exceptions (docs/decisions/corenet-diameter-codec.md); none has a C walk
 * that answers with RFC 6733's result codes, and the walk was the largest
 * single part of the S6a event loop's CPU per AIR
 * (docs/decisions/corenet-native-codecs.md). The Python decoder stays the
 * reference: tests compare the two on random and mutated messages.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* check kinds, as _codec's _CHECKS: > 0 a fixed size, else these (0: octets) */
#define CHECK_GROUPED (-1)
#define CHECK_ADDRESS (-2)
#define CHECK_UTF8 (-3)

typedef struct {
    uint64_t key; /* code << 32 | vendor */
    long check;
} entry;

static entry *table = NULL;
static Py_ssize_t table_len = 0;
static PyTypeObject *avp_type = NULL;
static long max_depth = 0;
static Py_ssize_t max_avps = 0;

static int
by_key(const void *a, const void *b)
{
    uint64_t x = ((const entry *)a)->key, y = ((const entry *)b)->key;
    return x < y ? -1 : x > y;
}

/* 1 found (*check set), 0 not in the dictionary */
static int
lookup(uint32_t code, uint32_t vendor, long *check)
{
    uint64_t key = ((uint64_t)code << 32) | vendor;
    Py_ssize_t lo = 0, hi = table_len;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (table[mid].key < key)
            lo = mid + 1;
        else if (table[mid].key > key)
            hi = mid;
        else {
            *check = table[mid].check;
            return 1;
        }
    }
    return 0;
}

static inline uint32_t
u32_at(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The AVPs of p[0:end]: 1 valid (appended to out when out is not NULL), 0 invalid,
 * -1 a Python error (memory). */
static int
walk(const unsigned char *p, Py_ssize_t end, long depth, PyObject *out)
{
    Py_ssize_t pos = 0, count = 0;
    if (depth > max_depth)
        return 0;
    while (pos < end) {
        if (end - pos < 8)
            return 0;
        uint32_t code = u32_at(p + pos), word = u32_at(p + pos + 4);
        unsigned flags = word >> 24;
        Py_ssize_t length = word & 0xFFFFFF, head;
        uint32_t vendor = 0;
        if (flags & 0x80) {
            head = 12;
            if (length < 12 || pos + length > end)
                return 0;
            vendor = u32_at(p + pos + 8);
        }
        else {
            head = 8;
            if (length < 8 || pos + length > end)
                return 0;
        }
        if (flags & 0x1F)
            return 0;
        const unsigned char *value = p + pos + head;
        Py_ssize_t size = length - head;
        long check;
        if (!lookup(code, vendor, &check)) {
            if (flags & 0x40)
                return 0;
        }
        else if (check == CHECK_UTF8) {
            PyObject *text = PyUnicode_DecodeUTF8((const char *)value, size, "strict");
            if (text == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                    return -1;
                PyErr_Clear();
                return 0;
            }
            Py_DECREF(text);
        }
        else if (check > 0) {
            if (size != check)
                return 0;
        }
        else if (check == CHECK_GROUPED) {
            int inner = walk(value, size, depth + 1, NULL);
            if (inner <= 0)
                return inner;
        }
        else if (check == CHECK_ADDRESS) {
            if (!((size == 6 && value[0] == 0 && value[1] == 1) ||
                  (size == 18 && value[0] == 0 && value[1] == 2)))
                return 0;
        }
        if (out != NULL) {
            PyObject *avp = avp_type->tp_alloc(avp_type, 4);
            if (avp == NULL)
                return -1;
            PyObject *c = PyLong_FromUnsignedLong(code);
            PyObject *d = PyBytes_FromStringAndSize((const char *)value, size);
            PyObject *v = PyLong_FromUnsignedLong(vendor);
            PyObject *m = (flags & 0x40) ? Py_True : Py_False;
            Py_INCREF(m);
            PyTuple_SET_ITEM(avp, 0, c);
            PyTuple_SET_ITEM(avp, 1, d);
            PyTuple_SET_ITEM(avp, 2, v);
            PyTuple_SET_ITEM(avp, 3, m);
            if (c == NULL || d == NULL || v == NULL) {
                Py_DECREF(avp);
                return -1;
            }
            int failed = PyList_Append(out, avp);
            Py_DECREF(avp);
            if (failed)
                return -1;
        }
        if (++count > max_avps)
            return 0;
        pos += (length + 3) & ~(Py_ssize_t)3;
        if (pos > end)
            return 0;
    }
    return 1;
}

static PyObject *
decode_avps(PyObject *self, PyObject *args)
{
    Py_buffer data;
    long depth;
    if (!PyArg_ParseTuple(args, "y*l:decode_avps", &data, &depth))
        return NULL;
    if (avp_type == NULL) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_RuntimeError, "configure() was not called");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        PyBuffer_Release(&data);
        return NULL;
    }
    int ok = walk((const unsigned char *)data.buf, data.len, depth, out);
    PyBuffer_Release(&data);
    if (ok == 1)
        return out;
    Py_DECREF(out);
    if (ok < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
configure(PyObject *self, PyObject *args)
{
    PyObject *checks, *type;
    long depth;
    Py_ssize_t avps;
    if (!PyArg_ParseTuple(args, "O!O!ln:configure", &PyDict_Type, &checks, &PyType_Type,
                          &type, &depth, &avps))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "the AVP type must be a tuple subclass");
        return NULL;
    }
    Py_ssize_t n = PyDict_Size(checks), i = 0, at = 0;
    entry *fresh = PyMem_Malloc(sizeof(entry) * (n ? n : 1));
    if (fresh == NULL)
        return PyErr_NoMemory();
    PyObject *key, *value;
    while (PyDict_Next(checks, &i, &key, &value)) {
        unsigned long code, vendor;
        if (!PyTuple_Check(key) || PyTuple_GET_SIZE(key) != 2) {
            PyMem_Free(fresh);
            PyErr_SetString(PyExc_TypeError, "keys are (code, vendor)");
            return NULL;
        }
        code = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(key, 0));
        vendor = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(key, 1));
        long check = PyLong_AsLong(value);
        if (PyErr_Occurred() || code > 0xFFFFFFFFUL || vendor > 0xFFFFFFFFUL) {
            PyMem_Free(fresh);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "code or vendor beyond 32 bits");
            return NULL;
        }
        fresh[at].key = ((uint64_t)code << 32) | vendor;
        fresh[at].check = check;
        at++;
    }
    qsort(fresh, (size_t)at, sizeof(entry), by_key);
    PyMem_Free(table);
    table = fresh;
    table_len = at;
    Py_INCREF(type);
    Py_XSETREF(avp_type, (PyTypeObject *)type);
    max_depth = depth;
    max_avps = avps;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(checks, avp_type, max_depth, max_avps): the dictionary's checks by "
     "(code, vendor) and the limits of the walk."},
    {"decode_avps", decode_avps, METH_VARARGS,
     "decode_avps(data, depth) -> list of AVPs, or None when the Python decoder must "
     "say what is wrong."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "_native", "The Diameter AVP walk in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModule_Create(&native_module);
}
