/* The policy engine's usage counters over a batch, in C (simtrust.policy._counters).
 *
 * PolicyEngine.ingest_columns (policy/_batch.py) counts volume (octets) and rate
 * (flows) per device and bucket: a device's counter restarts at zero where the
 * bucket (hour, day, month, rate window) of its rows changes, and starts from
 * the stored (bucket, count) of the UsageMeter dict when its first row of the
 * batch falls in the stored bucket. segmented() walks the rows once in order,
 * with each device's (bucket, count) in a C array, and gives per row the
 * counter before the row, and per device the (bucket, count) to store: what the
 * numpy path (a stable sort by device and segmented cumulative sums) gives, in
 * the same 64-bit two's complement arithmetic. A stored value that is not a
 * 2-tuple of exact ints is left to that path (None); a stored count or bucket
 * outside 64 bits, or a count above 2**61, makes the batch go through the
 * per-record path (the numpy path's own limits), said by returning False.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef struct {
    int64_t bucket;
    uint64_t count;
    int started;
} counter;

/* 1 read, 0 not a 2-tuple of exact ints, -1 outside the numpy path's range */
static int
stored(PyObject *v, int64_t *bucket, int64_t *count)
{
    if (!PyTuple_CheckExact(v) || PyTuple_GET_SIZE(v) != 2)
        return 0;
    PyObject *b = PyTuple_GET_ITEM(v, 0), *c = PyTuple_GET_ITEM(v, 1);
    if (!PyLong_CheckExact(b) || !PyLong_CheckExact(c))
        return 0;
    int ob = 0, oc = 0;
    long long bv = PyLong_AsLongLongAndOverflow(b, &ob);
    long long cv = PyLong_AsLongLongAndOverflow(c, &oc);
    if (ob || oc)
        return -1;
    *bucket = bv;
    *count = cv;
    return 1;
}

PyDoc_STRVAR(segmented_doc,
"segmented(pos, bucket, inc, keys, counters, prev) -> list | None | False\n\n"
"pos: int64 row -> device index (into keys); bucket, inc: int64 per row; prev: writable\n"
"int64 per row, filled with the counter before each row. Returns per device the\n"
"(bucket, count) after the batch; None: a stored value is not a 2-tuple of ints (use the\n"
"numpy path); False: a stored value is outside its range (use the per-record path).");

static PyObject *
segmented(PyObject *self, PyObject *args)
{
    Py_buffer pos, bucket, inc, prev;
    PyObject *keys, *counters, *out = NULL;
    counter *state = NULL;
    if (!PyArg_ParseTuple(args, "y*y*y*O!O!w*", &pos, &bucket, &inc, &PyList_Type, &keys,
                          &PyDict_Type, &counters, &prev))
        return NULL;
    Py_ssize_t n = pos.len / 8, m = PyList_GET_SIZE(keys);
    if (pos.len % 8 || bucket.len != pos.len || inc.len != pos.len || prev.len != pos.len) {
        PyErr_SetString(PyExc_ValueError, "columns of different lengths");
        goto done;
    }
    state = PyMem_Calloc(m ? (size_t)m : 1, sizeof(counter));
    if (state == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    const int64_t *pv = pos.buf, *bv = bucket.buf, *iv = inc.buf;
    int64_t *out_prev = prev.buf;
    for (Py_ssize_t i = 0; i < n; i++)
        if (pv[i] < 0 || pv[i] >= m) {
            PyErr_SetString(PyExc_IndexError, "device index out of range");
            goto done;
        }
    /* a device's stored counter counts only if its first row falls in its bucket */
    int64_t *sb = PyMem_Calloc(m ? (size_t)m : 1, sizeof(int64_t));
    int64_t *sc = PyMem_Calloc(m ? (size_t)m : 1, sizeof(int64_t));
    char *has = PyMem_Calloc(m ? (size_t)m : 1, 1);
    if (sb == NULL || sc == NULL || has == NULL) {
        PyErr_NoMemory();
        goto free_stored;
    }
    for (Py_ssize_t j = 0; j < m; j++) {
        PyObject *v = PyDict_GetItemWithError(counters, PyList_GET_ITEM(keys, j));
        if (v == NULL) {
            if (PyErr_Occurred())
                goto free_stored;
            continue;
        }
        int r = stored(v, &sb[j], &sc[j]);
        if (r <= 0 || sc[j] > (1LL << 61)) {
            out = r == 0 ? Py_None : Py_False;
            Py_INCREF(out);
            goto free_stored;
        }
        has[j] = 1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        counter *c = &state[pv[i]];
        if (!c->started) {
            c->started = 1;
            c->bucket = bv[i];
            c->count = has[pv[i]] && sb[pv[i]] == bv[i] ? (uint64_t)sc[pv[i]] : 0;
        } else if (c->bucket != bv[i]) {
            c->bucket = bv[i];
            c->count = 0;
        }
        out_prev[i] = (int64_t)c->count;
        c->count += (uint64_t)iv[i];  /* wraps as numpy's int64 sums do */
    }
    out = PyList_New(m);
    if (out == NULL)
        goto free_stored;
    for (Py_ssize_t j = 0; j < m; j++) {
        PyObject *t = state[j].started
            ? Py_BuildValue("(LL)", (long long)state[j].bucket, (long long)(int64_t)state[j].count)
            : (Py_INCREF(Py_None), Py_None);
        if (t == NULL) {
            Py_CLEAR(out);
            goto free_stored;
        }
        PyList_SET_ITEM(out, j, t);
    }
free_stored:
    PyMem_Free(sb);
    PyMem_Free(sc);
    PyMem_Free(has);
done:
    PyMem_Free(state);
    PyBuffer_Release(&pos);
    PyBuffer_Release(&bucket);
    PyBuffer_Release(&inc);
    PyBuffer_Release(&prev);
    return out;
}

static PyMethodDef counters_methods[] = {
    {"segmented", segmented, METH_VARARGS, segmented_doc},
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
