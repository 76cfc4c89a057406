/*
 * Bulk decoding of IPFIX (RFC 7011 §3.4.3) and NetFlow v9 (RFC 3954 §5.3) data
 * sets whose template has only fixed-length fields, for the common IPv4 shape:
 * every record is read at the same field offsets (RFC 7011 §8: the template
 * fixes the layout), integers are unsigned big-endian of 1 to 8 octets
 * (reduced-size encoding, RFC 7011 §6.2), and each record becomes one
 * FlowRecord tuple built directly, without an intermediate row tuple.
 *
 * The pure-Python path in _ipfix.py (struct.iter_unpack + FlowRecord) is the
 * reference: values are the same Python objects it makes (times as
 * base + value / 1000.0 in double precision, addresses as dotted quads shared
 * through the decoder's cache dict, counters scaled by the sampling interval
 * with Python integer arithmetic). Everything else (variable-length fields,
 * IPv6, other time elements, options templates) stays on the Python path.
 *
 * The function never trusts its arguments: offsets, lengths and the slice of
 * the buffer are checked before any byte is read; bad arguments raise
 * ValueError or TypeError.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "_flowcommon.h"

static PyObject *
counter(uint64_t v, PyObject *scale)
{
    PyObject *n = PyLong_FromUnsignedLongLong(v);
    if (n == NULL || scale == NULL)
        return n;
    PyObject *r = PyNumber_Multiply(n, scale);
    Py_DECREF(n);
    return r;
}

PyDoc_STRVAR(ipv4_flows_doc,
"ipv4_flows(data, start, end, record_len, offsets, base, exporter, names, cls, scale, out)"
" -> int\n\n"
"Decode the fixed-length records in data[start:end] (trailing octets shorter than\n"
"record_len are padding) and append one cls tuple per record to out:\n"
"(base + start/1000.0, base + end/1000.0, src, dst, sport, dport, proto,\n"
"packets*scale, octets*scale, flags, exporter, None). offsets holds ten\n"
"(offset, length) pairs: src, dst, start, end, sport, dport, proto, packets,\n"
"octets, flags; addresses are 4 octets, integers 1 to 8. Returns the count.");

static PyObject *
ipv4_flows(PyObject *self, PyObject *args)
{
    Py_buffer buf;
    Py_ssize_t start, end, record_len;
    PyObject *offsets, *exporter, *names, *cls, *scale_obj, *out;
    double base;
    if (!PyArg_ParseTuple(args, "y*nnnO!dUO!OOO!", &buf, &start, &end, &record_len,
                          &PyTuple_Type, &offsets, &base, &exporter, &PyDict_Type, &names,
                          &cls, &scale_obj, &PyList_Type, &out))
        return NULL;
    PyObject *result = NULL;
    PyObject *scale = NULL;
    Py_ssize_t off[N_FIELDS], len[N_FIELDS];
    PyTypeObject *type;

    if (check_record_class(cls) < 0)
        goto done;
    type = (PyTypeObject *)cls;
    if (start < 0 || end < start || end > buf.len) {
        PyErr_SetString(PyExc_ValueError, "start/end outside the buffer");
        goto done;
    }
    if (record_len <= 0 || record_len > 65535) {
        PyErr_SetString(PyExc_ValueError, "record_len out of range");
        goto done;
    }
    if (PyTuple_GET_SIZE(offsets) != 2 * N_FIELDS) {
        PyErr_SetString(PyExc_ValueError, "offsets must hold ten (offset, length) pairs");
        goto done;
    }
    for (int i = 0; i < N_FIELDS; i++) {
        off[i] = PyLong_AsSsize_t(PyTuple_GET_ITEM(offsets, 2 * i));
        len[i] = PyLong_AsSsize_t(PyTuple_GET_ITEM(offsets, 2 * i + 1));
        if (PyErr_Occurred())
            goto done;
        if (check_field(i, off[i], len[i], record_len) < 0)
            goto done;
    }
    if (!PyLong_Check(scale_obj)) {
        PyErr_SetString(PyExc_TypeError, "scale must be an int");
        goto done;
    }
    {
        int overflow = 0;
        long long s = PyLong_AsLongLongAndOverflow(scale_obj, &overflow);
        if (s == -1 && PyErr_Occurred())
            goto done;
        if (overflow || s != 1) {
            scale = scale_obj;
            Py_INCREF(scale);
        }
    }

    const unsigned char *p = (const unsigned char *)buf.buf + start;
    Py_ssize_t n = (end - start) / record_len;
    for (Py_ssize_t k = 0; k < n; k++, p += record_len) {
        PyObject *rec = type->tp_alloc(type, 12);
        if (rec == NULL)
            goto done;
        /* Each item is made only while no exception is set; the first failure stops. */
        int bad = 0;
        FLOW_PUT(rec, bad, 0, PyFloat_FromDouble(base + (double)read_be(p + off[F_START], len[F_START]) / 1000.0));
        FLOW_PUT(rec, bad, 1, PyFloat_FromDouble(base + (double)read_be(p + off[F_END], len[F_END]) / 1000.0));
        FLOW_PUT(rec, bad, 2, address(names, p + off[F_SRC]));
        FLOW_PUT(rec, bad, 3, address(names, p + off[F_DST]));
        FLOW_PUT(rec, bad, 4, PyLong_FromUnsignedLongLong(read_be(p + off[F_SPORT], len[F_SPORT])));
        FLOW_PUT(rec, bad, 5, PyLong_FromUnsignedLongLong(read_be(p + off[F_DPORT], len[F_DPORT])));
        FLOW_PUT(rec, bad, 6, PyLong_FromUnsignedLongLong(read_be(p + off[F_PROTO], len[F_PROTO])));
        FLOW_PUT(rec, bad, 7, counter(read_be(p + off[F_PKTS], len[F_PKTS]), scale));
        FLOW_PUT(rec, bad, 8, counter(read_be(p + off[F_OCTS], len[F_OCTS]), scale));
        FLOW_PUT(rec, bad, 9, PyLong_FromUnsignedLongLong(read_be(p + off[F_FLAGS], len[F_FLAGS])));
        if (append_record(out, rec, bad, exporter) < 0)
            goto done;
    }
    result = PyLong_FromSsize_t(n);
done:
    Py_XDECREF(scale);
    PyBuffer_Release(&buf);
    return result;
}

static PyMethodDef methods[] = {
    {"ipv4_flows", ipv4_flows, METH_VARARGS, ipv4_flows_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    "simtrust.flows._native",
    "Bulk decoding of fixed-length IPFIX / NetFlow v9 data sets (RFC 7011, RFC 3954).",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModule_Create(&native_module);
}
