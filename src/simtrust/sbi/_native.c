/* HPACK Huffman decoding in C (simtrust.sbi._native).
 *
 * huffman(data) runs the state machine of the hpack library's decode_huffman
 * (RFC 7541 §5.2, Appendix B): the same table (hpack.huffman_table.HUFFMAN_TABLE,
 * handed over once by configure()), one nibble at a time, a symbol out where the
 * table says so, failure where it says so, and the string complete only where it
 * says so. It returns the decoded octets, or None where decode_huffman raises;
 * the caller then lets the library decode the field and raise its own error.
 *
 * Why C and no library: the only HPACK package for this machine's Python is the
 * pure-Python hpack (no nghttp2 binding is packaged), and a client built on
 * nghttp2 sends :path and content-length of every request as Huffman literals
 * that never enter the dynamic table, so each request decodes them again; in
 * Python that was about a tenth of an SBI worker's CPU per request
 * (docs/decisions/corenet-native-codecs.md).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static uint8_t next_state[4096], flags_of[4096], symbol[4096];
static unsigned long complete_flag = 0, emit_flag = 0, fail_flag = 0;
static int configured = 0;

static PyObject *
huffman(PyObject *self, PyObject *args)
{
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*:huffman", &data))
        return NULL;
    if (!configured) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_RuntimeError, "configure() was not called");
        return NULL;
    }
    const unsigned char *p = data.buf;
    Py_ssize_t n = data.len;
    if (n == 0) {
        PyBuffer_Release(&data);
        return PyBytes_FromStringAndSize("", 0);
    }
    /* at most two symbols per octet (the shortest code is 5 bits) */
    PyObject *out = PyBytes_FromStringAndSize(NULL, 2 * n);
    if (out == NULL) {
        PyBuffer_Release(&data);
        return NULL;
    }
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    Py_ssize_t at = 0;
    unsigned state = 0, flags = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned nibbles[2] = {p[i] >> 4, p[i] & 0x0F};
        for (int j = 0; j < 2; j++) {
            unsigned index = state * 16 + nibbles[j];
            state = next_state[index];
            flags = flags_of[index];
            if (flags & fail_flag)
                goto invalid;
            if (flags & emit_flag)
                o[at++] = symbol[index];
        }
    }
    if (!(flags & complete_flag))
        goto invalid;
    PyBuffer_Release(&data);
    if (_PyBytes_Resize(&out, at) < 0)
        return NULL;
    return out;
invalid:
    PyBuffer_Release(&data);
    Py_DECREF(out);
    Py_RETURN_NONE;
}

static PyObject *
configure(PyObject *self, PyObject *args)
{
    PyObject *table;
    unsigned long complete, emit, fail;
    if (!PyArg_ParseTuple(args, "Okkk:configure", &table, &complete, &emit, &fail))
        return NULL;
    PyObject *seq = PySequence_Fast(table, "the table must be a sequence");
    if (seq == NULL)
        return NULL;
    if (PySequence_Fast_GET_SIZE(seq) != 4096) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "the table has 256 states of 16 nibbles");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < 4096; i++) {
        unsigned int st, fl, sy;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "III", &st, &fl, &sy) ||
            st > 255 || fl > 255 || sy > 255) {
            Py_DECREF(seq);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "a table entry is out of range");
            return NULL;
        }
        next_state[i] = (uint8_t)st;
        flags_of[i] = (uint8_t)fl;
        symbol[i] = (uint8_t)sy;
    }
    Py_DECREF(seq);
    complete_flag = complete;
    emit_flag = emit;
    fail_flag = fail;
    configured = 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(table, complete, emit, fail): hpack's Huffman state table and its flags."},
    {"huffman", huffman, METH_VARARGS,
     "huffman(data) -> the decoded octets, or None where hpack's decode_huffman raises."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "_native", "HPACK Huffman decoding in C.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModule_Create(&native_module);
}
