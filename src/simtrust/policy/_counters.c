/* The policy engine's usage counters over a batch, in C (simtrust.policy._counters).
 *
 * PolicyEngine.ingest_columns (policy/_batch.py) counts volume (octets) and rate
 * (flows) per device and bucket, with each device's (bucket, count) in arrays
 * indexed by device slot (policy/_slots.py). slots() walks the rows once in
 * order and does per row what UsageMeter.add_bytes does per record: the counter
 * restarts at zero where the row's bucket (hour, day, month, rate window) is not
 * the stored one, the row's increment is added, and the counter before the row
 * is written to prev. A stored count above 2**61 at a slot the batch touches
 * makes it return False before anything is written (the batch then goes through
 * the per-record path, which has no 64-bit limit); the increments of one batch
 * stay below 2**60 (checked by the caller), so no sum wraps.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

PyDoc_STRVAR(slots_doc,
"slots(pos, bucket, inc, sb, sc, has, prev) -> bool\n\n"
"pos: int64 row -> device slot; bucket, inc: int64 per row; sb, sc: writable int64 per\n"
"slot, the stored bucket and count; has: writable bool per slot, whether one is stored;\n"
"prev: writable int64 per row, filled with the counter before each row. Returns False,\n"
"with nothing written, when a slot the rows touch stores a count above 2**61.");

static PyObject *
slots(PyObject *self, PyObject *args)
{
    Py_buffer pos, bucket, inc, sb, sc, has, prev;
    PyObject *out = NULL;
    if (!PyArg_ParseTuple(args, "y*y*y*w*w*w*w*", &pos, &bucket, &inc, &sb, &sc, &has, &prev))
        return NULL;
    Py_ssize_t n = pos.len / 8, m = has.len;
    if (pos.len % 8 || bucket.len != pos.len || inc.len != pos.len || prev.len != pos.len
            || sb.len != m * 8 || sc.len != m * 8) {
        PyErr_SetString(PyExc_ValueError, "columns of different lengths");
        goto done;
    }
    const int64_t *pv = pos.buf, *bv = bucket.buf, *iv = inc.buf;
    int64_t *sbv = sb.buf, *scv = sc.buf, *out_prev = prev.buf;
    char *hv = has.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t p = pv[i];
        if (p < 0 || p >= m) {
            PyErr_SetString(PyExc_IndexError, "device slot out of range");
            goto done;
        }
        if (hv[p] && scv[p] > (1LL << 61)) {
            out = Py_False;
            Py_INCREF(out);
            goto done;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t p = pv[i];
        int64_t c = hv[p] && sbv[p] == bv[i] ? scv[p] : 0;
        out_prev[i] = c;
        scv[p] = c + iv[i];
        sbv[p] = bv[i];
        hv[p] = 1;
    }
    out = Py_True;
    Py_INCREF(out);
done:
    PyBuffer_Release(&pos);
    PyBuffer_Release(&bucket);
    PyBuffer_Release(&inc);
    PyBuffer_Release(&sb);
    PyBuffer_Release(&sc);
    PyBuffer_Release(&has);
    PyBuffer_Release(&prev);
    return out;
}

static PyMethodDef counters_methods[] = {
    {"slots", slots, METH_VARARGS, slots_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef counters_module = {
    PyModuleDef_HEAD_INIT, "_counters", "The policy engine's usage counters of a batch in C.",
    -1, counters_methods,
};

PyMODINIT_FUNC
PyInit__counters(void)
{
    return PyModule_Create(&counters_module);
}
