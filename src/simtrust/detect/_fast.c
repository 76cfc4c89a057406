/* The streaming detector's quiet records, in C (simtrust.detect._fast).
 *
 * Detector.observe_columns (detect/_batch.py) hands this module the columns of
 * a batch (the numeric ones as buffers, read where they lie); step() takes records from index i for as long as each one
 * is quiet: it raises no alert and touches only the device's windows, its
 * bytes, its per-destination counters of the 10 s window and the contact
 * moments of destinations outside its baseline (with the 10 s and 60 s window
 * rolls of a detecting, not learning, device). A record that could do anything
 * else (first evidence of a scan or of breadth, a flood, volume or beacon check
 * that passes, a destination not judged yet or judged by a baseline, a quiet
 * hour, an out-of-order first record, a learning device) is left untouched and
 * its index returned: Python runs observe's body for it. Every condition is checked before
 * anything is written, with Python's own number protocol where the values are
 * Python numbers, so the state is the one observe leaves.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <structmember.h>

enum { UNICAST = 0, GROUP = 2 };

#define SLOTS(X) X(learn) X(t_first) X(t_last) X(w10) X(w60) X(by_cur) X(by_prev) X(th_vol) \
    X(h_dpk) X(h_dflows) X(h_dbytes) X(dst_cur) X(dst_prev) X(known) X(time_on) X(brd_cur) \
    X(syn_cur) X(tel_cur) X(syn_prev) X(brd_prev) X(beacons) X(base) X(cohort) X(th_breadth) \
    X(brd_first)
#define ENUM(n) A_##n,
enum { SLOTS(ENUM) A_COUNT };
#undef ENUM
static PyObject *names[A_COUNT], *s_known_m;

/* The device state's attributes are slots (DeviceState.__slots__): once their
 * member descriptors are known for the device's type (and while the type is not
 * changed: its version tag), they are read and written at their offsets, as
 * the generic attribute protocol would read and write them. Any other type, or
 * a slot without a value, goes through that protocol. */
static PyTypeObject *slot_type, *bad_type;
static unsigned int slot_tag;
static Py_ssize_t slot_off[A_COUNT];

static int
resolve_slots(PyTypeObject *tp)
{
    Py_ssize_t off[A_COUNT];
    if (tp->tp_getattro != PyObject_GenericGetAttr || tp->tp_setattro != PyObject_GenericSetAttr)
        goto bad;
    for (int k = 0; k < A_COUNT; k++) {
        PyObject *d = PyObject_GetAttr((PyObject *)tp, names[k]);
        if (d == NULL) {
            PyErr_Clear();
            goto bad;
        }
        int member = Py_IS_TYPE(d, &PyMemberDescr_Type);
        if (member) {
            PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
            member = m->type == T_OBJECT_EX && !(m->flags & READONLY);
            off[k] = m->offset;
        }
        Py_DECREF(d);
        if (!member)
            goto bad;
    }
    if (!(tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) || tp->tp_version_tag == 0)
        goto bad;
    memcpy(slot_off, off, sizeof off);
    Py_INCREF(tp);
    Py_XSETREF(slot_type, tp);
    slot_tag = tp->tp_version_tag;
    return 1;
bad:
    bad_type = tp;
    return 0;
}

static inline int
slots_ok(PyObject *dev)
{
    PyTypeObject *tp = Py_TYPE(dev);
    if (tp == slot_type && tp->tp_version_tag == slot_tag &&
        (tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG))
        return 1;
    if (tp == bad_type)
        return 0;
    return resolve_slots(tp);
}

/* new reference, or NULL with the exception getattr raises */
static inline PyObject *
dget(PyObject *dev, int a)
{
    if (slots_ok(dev)) {
        PyObject *v = *(PyObject **)((char *)dev + slot_off[a]);
        if (v != NULL) {
            Py_INCREF(v);
            return v;
        }
    }
    return PyObject_GetAttr(dev, names[a]);
}

static inline int
dset(PyObject *dev, int a, PyObject *v)
{
    if (slots_ok(dev)) {
        PyObject **p = (PyObject **)((char *)dev + slot_off[a]);
        PyObject *old = *p;
        Py_INCREF(v);
        *p = v;
        Py_XDECREF(old);
        return 0;
    }
    return PyObject_SetAttr(dev, names[a], v);
}

static PyObject *k_zero, *k_one, *k_six, *k_ten, *f_zero, *f_one;

/* Item k of list lst (an exact float, checked before anything is written) becomes v.
 * A float that only the list holds (reference count 1: nothing else can see it) is
 * given the new value in place, so a device's contact moments and flood counters stay
 * where they were made instead of moving to a new allocation at every record; any
 * other is replaced by a new float, as Python's `lst[k] = v` would. */
static inline int
put_float(PyObject *lst, Py_ssize_t k, double v)
{
    PyObject *old = PyList_GET_ITEM(lst, k);
    if (Py_REFCNT(old) == 1 && PyFloat_CheckExact(old)) {
        ((PyFloatObject *)old)->ob_fval = v;
        return 0;
    }
    PyObject *f = PyFloat_FromDouble(v);
    if (f == NULL)
        return -1;
    PyList_SET_ITEM(lst, k, f);
    Py_DECREF(old);
    return 0;
}

/* 0.0 and 1.0 are shared (observe's literals are one object each too): a new flood
 * entry's flow count, unanswered count and quiet-until are not allocations of their own */
static inline PyObject *
const_float(double v)
{
    PyObject *c = v == 1.0 ? f_one : v == 0.0 && !signbit(v) ? f_zero : NULL;
    if (c != NULL) {
        Py_INCREF(c);
        return c;
    }
    return PyFloat_FromDouble(v);
}

static int
fattr(PyObject *o, int name, double *out)
{
    PyObject *v = dget(o, name);
    if (v == NULL)
        return -1;
    if (!PyFloat_Check(v)) {
        Py_DECREF(v);
        return 1;
    }
    *out = PyFloat_AS_DOUBLE(v);
    Py_DECREF(v);
    return 0;
}

/* 1 if the comparison holds, 0 if not, -1 on error */
static int
cmp(PyObject *a, PyObject *b, int op)
{
    return PyObject_RichCompareBool(a, b, op);
}

static int
roll60(PyObject *dev, PyObject *w, PyObject *w60)
{
    PyObject *next = PyNumber_Add(w60, k_one);
    if (next == NULL)
        return -1;
    int adjacent = cmp(w, next, Py_EQ);
    Py_DECREF(next);
    if (adjacent < 0)
        return -1;
    PyObject *syn = dget(dev, A_syn_cur);
    PyObject *tel = dget(dev, A_tel_cur);
    PyObject *brd = dget(dev, A_brd_cur);
    PyObject *by = dget(dev, A_by_cur);
    int rc = -1;
    if (syn == NULL || tel == NULL || brd == NULL || by == NULL)
        goto done;
    Py_ssize_t ns = PyObject_Size(syn), nt = PyObject_Size(tel), nb = PyObject_Size(brd);
    if (ns < 0 || nt < 0 || nb < 0)
        goto done;
    PyObject *sp = PyLong_FromSsize_t(adjacent ? ns + nt : 0);
    PyObject *bp = PyLong_FromSsize_t(adjacent ? nb : 0);
    if (sp == NULL || bp == NULL) {
        Py_XDECREF(sp);
        Py_XDECREF(bp);
        goto done;
    }
    int bad = dset(dev, A_syn_prev, sp) < 0 || dset(dev, A_brd_prev, bp) < 0
              || dset(dev, A_by_prev, adjacent ? by : k_zero) < 0;
    Py_DECREF(sp);
    Py_DECREF(bp);
    if (bad)
        goto done;
    if (ns) {
        if (!PyDict_Check(syn)) {
            PyErr_SetString(PyExc_TypeError, "syn_cur is not a dict");
            goto done;
        }
        PyDict_Clear(syn);
    }
    if ((nt && PySet_Clear(tel) < 0) || (nb && PySet_Clear(brd) < 0))
        goto done;
    if (dset(dev, A_by_cur, k_zero) < 0 || dset(dev, A_w60, w) < 0)
        goto done;
    rc = 0;
done:
    Py_XDECREF(syn);
    Py_XDECREF(tel);
    Py_XDECREF(brd);
    Py_XDECREF(by);
    return rc;
}

/* Python's float floor division (floatobject.c float_floor_div), for finite operands */
static double
py_floordiv(double vx, double wx)
{
    double mod = fmod(vx, wx), div = (vx - mod) / wx, floordiv;
    if (mod && ((wx < 0) != (mod < 0)))
        div -= 1.0;
    if (div) {
        floordiv = floor(div);
        if (div - floordiv > 0.5)
            floordiv += 1.0;
    } else {
        floordiv = copysign(0.0, vx / wx);
    }
    return floordiv;
}

#define SMALL (1LL << 52)

/* o, made by make if it is not made yet: false if that failed (an exception is set) */
#define OBJ_OF(o, make) ((o) != NULL || ((o) = (make)) != NULL)

/* an exact int of magnitude below 2**52 into *out: 1, else 0 (no exception) */
static inline int
small_int(PyObject *o, long long *out)
{
    if (!PyLong_CheckExact(o))
        return 0;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow || v >= SMALL || v <= -SMALL) {
        PyErr_Clear();
        return 0;
    }
    *out = v;
    return 1;
}

typedef struct {
    double merge_s, min_contacts, min_period, max_period, max_cv;
} beacon_params;

/* One record: 1 taken, 0 left to Python, -1 error. */
static int
take(PyObject *dev, double start, double t, PyObject *dst, unsigned long long pk_n,
     unsigned long long oc_n, long proto, long dport, unsigned long long flags, long cls,
     PyObject *no_prev, const beacon_params *bp, PyObject *knowledge)
{
    /* the Python objects tolist would give for the record's start, end and octets,
       made only where the state keeps one or Python's number protocol is needed */
    PyObject *start_o = NULL, *t_o = NULL, *oc_o = NULL;
    PyObject *learn = NULL, *t_first = NULL, *t_last = NULL, *w10 = NULL, *dw10 = NULL,
             *w60 = NULL, *w60n = NULL, *by_cur = NULL, *by_prev = NULL, *by_new = NULL,
             *sum = NULL, *th_vol = NULL, *dst_cur = NULL, *brd = NULL, *known = NULL,
             *time_on = NULL, *q = NULL, *beacons = NULL;
    int rc = -1, r;
    learn = dget(dev, A_learn);
    if (learn == NULL)
        goto done;
    if (learn != Py_None) {
        rc = 0;
        goto done;
    }
    t_first = dget(dev, A_t_first);
    if (t_first == NULL)
        goto done;
    /* exact floats compare as doubles, exact small ints are added and compared in C
       (the values Python's number protocol would give); anything else goes through it */
    if (PyFloat_CheckExact(t_first))
        r = t < PyFloat_AS_DOUBLE(t_first);
    else if (!OBJ_OF(t_o, PyFloat_FromDouble(t)) || (r = cmp(t_o, t_first, Py_LT)) < 0)
        goto done;
    if (r) {
        rc = 0;
        goto done;
    }
    /* w10 = int(t // 10) */
    dw10 = dget(dev, A_w10);
    w60 = dget(dev, A_w60);
    if (dw10 == NULL || w60 == NULL)
        goto done;
    long long w10v = 0, dw10v = 0, w60v = 0, w60nv = 0;
    int fast_w = 0, roll10, roll6 = 0, adj60 = 0;
    if (isfinite(t) && small_int(dw10, &dw10v) && small_int(w60, &w60v)) {
        double fd = py_floordiv(t, 10.0);
        if (fd < (double)SMALL && fd > -(double)SMALL) {
            fast_w = 1;
            w10v = (long long)fd;
        }
    }
    if (fast_w) {
        roll10 = w10v > dw10v;
        if (roll10) {
            w60nv = w10v / 6 - (w10v % 6 != 0 && w10v < 0);  /* floor division */
            roll6 = w60nv > w60v;
            adj60 = roll6 && w60nv == w60v + 1;
            if ((w10 = PyLong_FromLongLong(w10v)) == NULL ||
                (w60n = PyLong_FromLongLong(w60nv)) == NULL)
                goto done;
        }
    } else {
        if (!OBJ_OF(t_o, PyFloat_FromDouble(t)))
            goto done;
        q = PyNumber_FloorDivide(t_o, k_ten);
        if (q == NULL || (w10 = PyNumber_Long(q)) == NULL)
            goto done;
        roll10 = cmp(w10, dw10, Py_GT);
        if (roll10 < 0)
            goto done;
        if (roll10) {
            w60n = PyNumber_FloorDivide(w10, k_six);
            if (w60n == NULL || (roll6 = cmp(w60n, w60, Py_GT)) < 0)
                goto done;
        }
    }
    int unanswered = proto == 6 && (flags & 0x12) == 0x02;
    long long packets_small = pk_n > (unsigned long long)LLONG_MAX ? 1LL << 62 : (long long)pk_n;
    if (unanswered && packets_small <= 3 && cls != GROUP) {
        rc = 0;
        goto done;
    }
    /* the 60 s roll, tentatively: is the new window adjacent to the last one? */
    if (roll6 && !fast_w) {
        PyObject *next = PyNumber_Add(w60, k_one);
        if (next == NULL)
            goto done;
        adj60 = cmp(w60n, next, Py_EQ);
        Py_DECREF(next);
        if (adj60 < 0)
            goto done;
    }
    /* breadth: a destination new in the 60 s window joins the set */
    int brd_add = 0, brd_first = 0;
    brd = dget(dev, A_brd_cur);
    if (brd == NULL)
        goto done;
    if (packets_small <= 2 && cls == UNICAST) {
        if (!PyAnySet_CheckExact(brd)) {
            rc = 0;
            goto done;
        }
        Py_ssize_t blen = PySet_GET_SIZE(brd);
        int in = roll6 ? 0 : PySet_Contains(brd, dst);
        if (in < 0)
            goto done;
        if (!in) {
            long long bprev, wl, synlen;
            PyObject *syn = dget(dev, A_syn_cur);
            if (syn == NULL)
                goto done;
            synlen = PyObject_Size(syn);
            Py_DECREF(syn);
            if (synlen < 0)
                goto done;
            if (roll6) {
                bprev = adj60 ? blen : 0;
                blen = 0;
                synlen = 0;
                wl = PyLong_AsLongLong(w60n);
            } else {
                PyObject *bp_o = dget(dev, A_brd_prev);
                if (bp_o == NULL)
                    goto done;
                bprev = PyLong_Check(bp_o) ? PyLong_AsLongLong(bp_o) : -1;
                Py_DECREF(bp_o);
                wl = PyLong_AsLongLong(w60);
            }
            if (PyErr_Occurred())
                goto done;
            double th_breadth;
            if ((r = fattr(dev, A_th_breadth, &th_breadth))) {
                rc = r < 0 ? -1 : 0;
                goto done;
            }
            if (bprev < 0 || wl < 0 || wl > (1LL << 46)) {
                rc = 0;
                goto done;
            }
            double est = (double)(blen + 1) +
                         (double)bprev * (1.0 - (t - (double)(wl * 60)) / 60.0);
            if (est >= th_breadth && synlen * 2 < blen + 1) {
                rc = 0;
                goto done;
            }
            brd_add = 1;
            brd_first = blen == 0 && bprev == 0;
        }
    }
    /* flood counters of the destination, tentatively */
    double dur = t - start;
    double share = dur <= 10.0 ? 1.0 : 10.0 / dur;
    /* as float(int): the nearest double, ties to even */
    double pk = (double)pk_n * share, oc = (double)oc_n * share;
    dst_cur = dget(dev, A_dst_cur);
    if (dst_cur == NULL)
        goto done;
    if (!PyDict_CheckExact(dst_cur)) {
        rc = 0;
        goto done;
    }
    PyObject *e = roll10 ? NULL : PyDict_GetItemWithError(dst_cur, dst); /* borrowed */
    if (e == NULL && PyErr_Occurred())
        goto done;
    double e0 = pk, e1 = 1.0, e2 = oc, e4 = unanswered ? 1.0 : 0.0, e5 = 0.0;
    if (e != NULL) {
        if (!PyList_CheckExact(e) || PyList_GET_SIZE(e) != 6) {
            rc = 0;
            goto done;
        }
        for (int k = 0; k < 6; k++)  /* e[3] (the first start) is not read here */
            if (k != 3 && !PyFloat_CheckExact(PyList_GET_ITEM(e, k))) {
                rc = 0;
                goto done;
            }
        e0 = PyFloat_AS_DOUBLE(PyList_GET_ITEM(e, 0)) + pk;
        e1 = PyFloat_AS_DOUBLE(PyList_GET_ITEM(e, 1)) + 1.0;
        e2 = PyFloat_AS_DOUBLE(PyList_GET_ITEM(e, 2)) + oc;
        e4 = PyFloat_AS_DOUBLE(PyList_GET_ITEM(e, 4)) + (unanswered ? 1.0 : 0.0);
        e5 = PyFloat_AS_DOUBLE(PyList_GET_ITEM(e, 5));
    }
    double h_dpk, h_dflows, h_dbytes;
    if ((r = fattr(dev, A_h_dpk, &h_dpk)) || (r = fattr(dev, A_h_dflows, &h_dflows)) ||
        (r = fattr(dev, A_h_dbytes, &h_dbytes))) {
        rc = r < 0 ? -1 : 0;
        goto done;
    }
    if (t >= e5 && (e0 >= h_dpk || e1 >= h_dflows || e2 >= h_dbytes)) {
        rc = 0;
        goto done;
    }
    /* bytes of the 60 s window, tentatively (a roll starts them from zero) */
    long long ocv, bcv = 0, bpv = 0;
    int fast_by = 0;
    th_vol = dget(dev, A_th_vol);
    if (th_vol == NULL)
        goto done;
    if (PyFloat_CheckExact(th_vol) && oc_n < (unsigned long long)SMALL) {
        ocv = (long long)oc_n;
        PyObject *cur_o = dget(dev, A_by_cur);
        if (cur_o == NULL)
            goto done;
        fast_by = small_int(cur_o, &bcv);
        Py_DECREF(cur_o);
        if (fast_by && roll6) {
            bpv = adj60 ? bcv : 0;
            bcv = 0;
        } else if (fast_by) {
            PyObject *prev_o = dget(dev, A_by_prev);
            if (prev_o == NULL)
                goto done;
            fast_by = small_int(prev_o, &bpv);
            Py_DECREF(prev_o);
        }
    }
    if (fast_by) {
        /* each below 2**52: the sums are exact and below 2**54, exact as doubles */
        long long nv = bcv + ocv;
        if ((double)(nv + bpv) >= PyFloat_AS_DOUBLE(th_vol)) {
            rc = 0;
            goto done;
        }
        if ((by_new = PyLong_FromLongLong(nv)) == NULL)
            goto done;
    } else if (!OBJ_OF(oc_o, PyLong_FromUnsignedLongLong(oc_n))) {
        goto done;
    } else if (roll6) {
        by_prev = adj60 ? dget(dev, A_by_cur) : (Py_INCREF(k_zero), k_zero);
        by_new = PyNumber_Add(k_zero, oc_o);
    } else {
        by_prev = dget(dev, A_by_prev);
        by_cur = dget(dev, A_by_cur);
        if (by_cur == NULL)
            goto done;
        by_new = PyNumber_Add(by_cur, oc_o);
    }
    if (!fast_by) {
        if (by_prev == NULL || by_new == NULL ||
            (sum = PyNumber_Add(by_new, by_prev)) == NULL)
            goto done;
        if ((r = cmp(sum, th_vol, Py_GE)) < 0)
            goto done;
        if (r) {
            rc = 0;
            goto done;
        }
    }
    /* a destination outside the baseline: the beacon moments move (Welford) */
    PyObject *b = NULL; /* borrowed from beacons */
    int beacon_new = 0, beacon_upd = 0;
    double b_nb = 0, b_mean = 0, b_m2 = 0;
    if (cls == UNICAST && !unanswered) {
        known = dget(dev, A_known);
        if (known == NULL)
            goto done;
        if (!PyDict_CheckExact(known)) {
            rc = 0;
            goto done;
        }
        PyObject *k = PyDict_GetItemWithError(known, dst); /* borrowed */
        if (k == NULL) {
            if (PyErr_Occurred())
                goto done;
            /* judged once and cached by the knowledge, as observe has it judged */
            PyObject *judged = PyObject_CallMethodObjArgs(knowledge, s_known_m, dev, dst, NULL);
            if (judged == NULL)
                goto done;
            r = PyObject_IsTrue(judged);
            Py_DECREF(judged);
        } else {
            r = PyObject_IsTrue(k);
        }
        if (r < 0)
            goto done;
        if (!r) {
            int infra = dport == 53 || dport == 123 || dport == 5353;
            if (proto == 6 || !infra) {
                beacons = dget(dev, A_beacons);
                if (beacons == NULL)
                    goto done;
                if (!PyDict_CheckExact(beacons)) {
                    rc = 0;
                    goto done;
                }
                b = PyDict_GetItemWithError(beacons, dst);
                if (b == NULL) {
                    if (PyErr_Occurred())
                        goto done;
                    beacon_new = PyDict_GET_SIZE(beacons) < 10000;
                } else {
                    if (!PyList_CheckExact(b) || PyList_GET_SIZE(b) != 5) {
                        rc = 0;
                        goto done;
                    }
                    for (int j = 1; j < 5; j++)  /* b[0] (the first contact) is not read */
                        if (!PyFloat_CheckExact(PyList_GET_ITEM(b, j))) {
                            rc = 0;
                            goto done;
                        }
                    double x = start - PyFloat_AS_DOUBLE(PyList_GET_ITEM(b, 1));
                    if (x >= bp->merge_s) {
                        double b3 = PyFloat_AS_DOUBLE(PyList_GET_ITEM(b, 3));
                        b_nb = PyFloat_AS_DOUBLE(PyList_GET_ITEM(b, 2)) + 1.0;
                        double delta = x - b3;
                        b_mean = b3 + delta / b_nb;
                        b_m2 = PyFloat_AS_DOUBLE(PyList_GET_ITEM(b, 4)) + delta * (x - b_mean);
                        if (b_nb + 1 >= bp->min_contacts && bp->min_period <= b_mean &&
                            b_mean <= bp->max_period) {
                            /* Explainer.beacon raises nothing when the jitter is too high */
                            double var = b_nb > 1 ? b_m2 / (b_nb - 1) : 0.0;
                            if (b_nb > 1 && (var < 0 || b_mean == 0.0)) {
                                rc = 0;
                                goto done;
                            }
                            double cv = b_nb > 1 ? sqrt(var) / b_mean : 0.0;
                            if (!(cv > bp->max_cv)) {
                                rc = 0;
                                goto done;
                            }
                        }
                        beacon_upd = 1;
                    }
                }
            }
            if (packets_small > 2) {  /* a baseline judges new destinations in Python */
                PyObject *base = dget(dev, A_base);
                if (base == NULL)
                    goto done;
                PyObject *cohort = dget(dev, A_cohort);
                int trained = base != Py_None || (cohort != NULL && cohort != Py_None);
                Py_DECREF(base);
                if (cohort == NULL)
                    goto done;
                Py_DECREF(cohort);
                if (trained) {
                    rc = 0;
                    goto done;
                }
            }
        }
    }
    time_on = dget(dev, A_time_on);
    if (time_on == NULL || (r = PyObject_IsTrue(time_on)) < 0)
        goto done;
    if (r) {  /* quiet hours are judged in Python */
        rc = 0;
        goto done;
    }
    /* quiet: write what observe writes */
    t_last = dget(dev, A_t_last);
    if (t_last == NULL)
        goto done;
    if (PyFloat_CheckExact(t_last))
        r = t > PyFloat_AS_DOUBLE(t_last);
    else if (!OBJ_OF(t_o, PyFloat_FromDouble(t)) || (r = cmp(t_o, t_last, Py_GT)) < 0)
        goto done;
    if (r && (!OBJ_OF(t_o, PyFloat_FromDouble(t)) || dset(dev, A_t_last, t_o) < 0))
        goto done;
    if (roll10) {
        if (roll6 && roll60(dev, w60n, w60) < 0)
            goto done;
        int adjacent;
        if (fast_w) {
            adjacent = w10v == dw10v + 1;
        } else {
            PyObject *next = PyNumber_Add(dw10, k_one);
            if (next == NULL)
                goto done;
            adjacent = cmp(w10, next, Py_EQ);
            Py_DECREF(next);
            if (adjacent < 0)
                goto done;
        }
        if (adjacent) {
            PyObject *fresh = PyDict_New();
            if (fresh == NULL)
                goto done;
            int bad = dset(dev, A_dst_prev, dst_cur) < 0 ||
                      dset(dev, A_dst_cur, fresh) < 0;
            Py_DECREF(dst_cur);
            dst_cur = fresh;
            if (bad)
                goto done;
        } else {
            if (dset(dev, A_dst_prev, no_prev) < 0)
                goto done;
            if (PyDict_GET_SIZE(dst_cur))
                PyDict_Clear(dst_cur);
        }
        if (dset(dev, A_w10, w10) < 0)
            goto done;
    }
    if (dset(dev, A_by_cur, by_new) < 0)
        goto done;
    if (brd_add) {
        if (brd_first && (!OBJ_OF(start_o, PyFloat_FromDouble(start)) ||
                          dset(dev, A_brd_first, start_o) < 0))
            goto done;
        if (PySet_Add(brd, dst) < 0)
            goto done;
    }
    if (e == NULL) {
        PyObject *lst = PyList_New(6);
        if (lst == NULL)
            goto done;
        double vals[6] = {e0, e1, e2, start, e4, e5};
        for (int k = 0; k < 6; k++) {
            PyObject *f = k == 0 || k == 2 || k == 3 ? PyFloat_FromDouble(vals[k])
                                                     : const_float(vals[k]);
            if (f == NULL) {
                Py_DECREF(lst);
                goto done;
            }
            PyList_SET_ITEM(lst, k, f);
        }
        PyObject_GC_UnTrack(lst);  /* floats only: no cycle through it */
        int bad = PyDict_SetItem(dst_cur, dst, lst) < 0;
        Py_DECREF(lst);
        if (bad)
            goto done;
    } else {
        if (put_float(e, 0, e0) < 0 || put_float(e, 1, e1) < 0 || put_float(e, 2, e2) < 0 ||
            (unanswered && put_float(e, 4, e4) < 0))
            goto done;
    }
    if (beacon_new) {
        /* the moments are floats of their own, made together, updated in place */
        PyObject *lst = Py_BuildValue("[ddddd]", start, start, 0.0, 0.0, 0.0);
        if (lst == NULL)
            goto done;
        PyObject_GC_UnTrack(lst);
        int bad = PyDict_SetItem(beacons, dst, lst) < 0;
        Py_DECREF(lst);
        if (bad)
            goto done;
    } else if (beacon_upd) {
        if (put_float(b, 1, start) < 0 || put_float(b, 2, b_nb) < 0 ||
            put_float(b, 3, b_mean) < 0 || put_float(b, 4, b_m2) < 0)
            goto done;
    }
    rc = 1;
done:
    Py_XDECREF(start_o);
    Py_XDECREF(t_o);
    Py_XDECREF(oc_o);
    Py_XDECREF(learn);
    Py_XDECREF(t_first);
    Py_XDECREF(t_last);
    Py_XDECREF(q);
    Py_XDECREF(w10);
    Py_XDECREF(dw10);
    Py_XDECREF(w60);
    Py_XDECREF(w60n);
    Py_XDECREF(by_cur);
    Py_XDECREF(by_prev);
    Py_XDECREF(by_new);
    Py_XDECREF(sum);
    Py_XDECREF(th_vol);
    Py_XDECREF(dst_cur);
    Py_XDECREF(brd);
    Py_XDECREF(known);
    Py_XDECREF(beacons);
    Py_XDECREF(time_on);
    return rc;
}

/* Reading ahead. The batch's devices come in no order and each device's state is a
 * few dozen small objects of its own (the slots' values, the window dictionaries and
 * their tables, a destination's flood entry and contact moments), so the records wait
 * on memory far more than they compute: a record's first read of each object is a
 * cache miss, and each object is found only through the one before it. While record i
 * is taken, the objects of the records a few places later are asked for, one link
 * further down the chain the nearer the record is: its device (AHEAD_DEV places on),
 * the values of the device's slots (AHEAD_SLOTS), the tables of its dictionaries
 * (AHEAD_TABLES), the record destination's contact moments and flood entry and the
 * previous 10 s window's entries, which a window roll releases (AHEAD_VALUES), their
 * item arrays (AHEAD_ITEMS) and their items (AHEAD_FLOATS). Only what the device holds
 * at that moment is followed (the devs list holds each device, the device its
 * containers) and nothing is written, called or counted: a prefetch is a hint to the
 * processor, so what each record does is unchanged. */
#define AHEAD_DEV 10
#define AHEAD_SLOTS 7
#define AHEAD_TABLES 5
#define AHEAD_VALUES 3
#define AHEAD_ITEMS 2
#define AHEAD_FLOATS 1
#define LINE 64
#define PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 3)

static const int ahead_slots[] = {
    A_learn, A_t_first, A_t_last, A_w10, A_w60, A_by_cur, A_by_prev, A_th_vol, A_h_dpk,
    A_h_dflows, A_h_dbytes, A_dst_cur, A_dst_prev, A_known, A_brd_cur, A_syn_cur,
    A_beacons, A_th_breadth, A_brd_prev,
};
static const int ahead_dicts[] = {A_dst_cur, A_dst_prev, A_known, A_beacons};

/* the device's slots at their offsets, when its type is the one resolved (else NULL) */
static inline __attribute__((always_inline)) char *
ahead_slots_of(PyObject *dev)
{
    PyTypeObject *tp = Py_TYPE(dev);
    if (tp != slot_type || tp->tp_version_tag != slot_tag ||
        !(tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG))
        return NULL;
    return (char *)dev;
}

static inline __attribute__((always_inline)) PyObject *
ahead_slot(char *base, int a)
{
    return *(PyObject **)(base + slot_off[a]);
}

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
/* CPython 3.11 and 3.12's dictionary table (Include/internal/pycore_dict.h) */
typedef struct {
    Py_ssize_t dk_refcnt;
    uint8_t dk_log2_size, dk_log2_index_bytes, dk_kind;
    uint32_t dk_version;
    Py_ssize_t dk_usable, dk_nentries;
    char dk_indices[];
} ahead_keys;
#define AHEAD_KEYS_UNICODE 1

/* The value d holds under this very key object (an exact str), found by the table's
 * own probe sequence reading only, or NULL (not found, another table kind, too many
 * probes): a guess that may miss, never a lookup (no comparison is called). */
static inline __attribute__((always_inline)) PyObject *
ahead_peek(PyObject *d, PyObject *key)
{
    if (!PyDict_CheckExact(d) || ((PyDictObject *)d)->ma_values != NULL)
        return NULL;
    const ahead_keys *k = (const ahead_keys *)((PyDictObject *)d)->ma_keys;
    Py_hash_t h = ((PyASCIIObject *)key)->hash;
    if (k->dk_kind != AHEAD_KEYS_UNICODE || h == -1 || k->dk_log2_size >= 32)
        return NULL;
    size_t mask = ((size_t)1 << k->dk_log2_size) - 1, perturb = (size_t)h;
    size_t j = (size_t)h & mask;
    const PyObject *const *entries =
        (const PyObject *const *)(k->dk_indices + ((size_t)1 << k->dk_log2_index_bytes));
    for (int tries = 0; tries < 8; tries++) {
        Py_ssize_t ix = k->dk_log2_size < 8 ? ((const int8_t *)k->dk_indices)[j]
                        : k->dk_log2_size < 16 ? ((const int16_t *)k->dk_indices)[j]
                                               : ((const int32_t *)k->dk_indices)[j];
        if (ix == -1)
            return NULL;
        if (ix >= 0 && ix < k->dk_nentries && entries[2 * ix] == key)
            return (PyObject *)entries[2 * ix + 1];
        perturb >>= 5;
        j = (j * 5 + perturb + 1) & mask;
    }
    return NULL;
}
#else
static inline PyObject *
ahead_peek(PyObject *d, PyObject *key)
{
    return NULL;
}
#endif

/* a list's object (depth 0), its item array (1) or its items (2) */
static inline __attribute__((always_inline)) void
ahead_list(PyObject *v, int depth)
{
    if (v == NULL)
        return;
    if (depth == 0) {  /* not read yet: whatever it is, its first bytes */
        PREFETCH((char *)v - 2 * sizeof(void *));  /* a list's collector header */
        PREFETCH((char *)v + sizeof(PyListObject) - 1);
        return;
    }
    if (!PyList_CheckExact(v))
        return;
    if (depth == 1) {
        PREFETCH(((PyListObject *)v)->ob_item);
    } else {
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(v) && k < 8; k++)
            PREFETCH(PyList_GET_ITEM(v, k));
    }
}

/* record j's destination entries and the previous 10 s window's entries, at a depth */
static inline __attribute__((always_inline)) void
ahead_values(PyObject *devs, PyObject *dsts, Py_ssize_t j, int depth)
{
    PyObject *dev = PyList_GET_ITEM(devs, j), *dst = PyList_GET_ITEM(dsts, j);
    char *base;
    if (dev == Py_None || (base = ahead_slots_of(dev)) == NULL)
        return;
    if (PyUnicode_CheckExact(dst)) {
        PyObject *d = ahead_slot(base, A_beacons);
        if (d != NULL)
            ahead_list(ahead_peek(d, dst), depth);
        d = ahead_slot(base, A_dst_cur);
        if (d != NULL)
            ahead_list(ahead_peek(d, dst), depth);
    }
    PyObject *prev = ahead_slot(base, A_dst_prev);
    if (prev != NULL && PyDict_CheckExact(prev) && PyDict_GET_SIZE(prev) <= 8) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(prev, &pos, &key, &value))
            ahead_list(value, depth);
    }
}

/* Inlined on purpose (with the helpers above): GCC drops a call to a function it
 * finds to have no effect, and prefetching is none. */
static inline __attribute__((always_inline)) void
read_ahead(PyObject *devs, PyObject *dsts, Py_ssize_t i, Py_ssize_t n)
{
    PyObject *dev;
    char *base;
    if (i + AHEAD_DEV < n && (dev = PyList_GET_ITEM(devs, i + AHEAD_DEV)) != Py_None) {
        /* not read yet: the size the resolved type has (DeviceState: 36 slots) */
        Py_ssize_t size = slot_type != NULL ? slot_type->tp_basicsize : LINE;
        for (Py_ssize_t o = -LINE / 4; o < size + LINE; o += LINE)
            PREFETCH((char *)dev + o);
    }
    if (i + AHEAD_SLOTS < n && (dev = PyList_GET_ITEM(devs, i + AHEAD_SLOTS)) != Py_None &&
        (base = ahead_slots_of(dev)) != NULL) {
        for (size_t k = 0; k < sizeof ahead_slots / sizeof *ahead_slots; k++) {
            PyObject *v = ahead_slot(base, ahead_slots[k]);
            if (v != NULL) {
                PREFETCH(v);
                PREFETCH((char *)v + sizeof(PyDictObject) - 1);
            }
        }
    }
    if (i + AHEAD_TABLES < n && (dev = PyList_GET_ITEM(devs, i + AHEAD_TABLES)) != Py_None &&
        (base = ahead_slots_of(dev)) != NULL) {
        for (size_t k = 0; k < sizeof ahead_dicts / sizeof *ahead_dicts; k++) {
            PyObject *v = ahead_slot(base, ahead_dicts[k]);
            if (v == NULL || !PyDict_CheckExact(v))
                continue;
            /* the table's header, index and entries: about 16 bytes an entry */
            const char *keys = (const char *)((PyDictObject *)v)->ma_keys;
            Py_ssize_t size = 48 + 24 * PyDict_GET_SIZE(v);
            if (size > 8 * LINE)
                size = 8 * LINE;
            for (Py_ssize_t o = 0; o < size; o += LINE)
                PREFETCH(keys + o);
        }
    }
    if (i + AHEAD_VALUES < n)
        ahead_values(devs, dsts, i + AHEAD_VALUES, 0);
    if (i + AHEAD_ITEMS < n)
        ahead_values(devs, dsts, i + AHEAD_ITEMS, 1);
    if (i + AHEAD_FLOATS < n)
        ahead_values(devs, dsts, i + AHEAD_FLOATS, 2);
}

/* The numeric columns are read where they lie, through the buffer protocol
 * (FlowColumns' memoryviews, or arrays): one-dimensional and contiguous, of doubles
 * (times) or of unsigned integers of 1, 2, 4 or 8 bytes (ports, protocol, counts,
 * flags), in the machine's byte order. */
enum { COL_START, COL_END, COL_DPORT, COL_PK, COL_OC, COL_PROTO, COL_FLAGS, COL_COUNT };

static int
column_open(PyObject *o, Py_buffer *v, int real, Py_ssize_t n)
{
    if (PyObject_GetBuffer(o, v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    const char *f = v->format != NULL ? v->format : "B";
    if (*f == '@' || *f == '=' || (PY_LITTLE_ENDIAN && *f == '<') ||
        (!PY_LITTLE_ENDIAN && (*f == '>' || *f == '!')))
        f++;
    int ok = v->ndim <= 1 && f[0] != '\0' && f[1] == '\0' &&
             (real ? f[0] == 'd' && v->itemsize == 8
                   : strchr("BHILQN", f[0]) != NULL &&
                         (v->itemsize == 1 || v->itemsize == 2 || v->itemsize == 4 ||
                          v->itemsize == 8));
    if (!ok)
        PyErr_Format(PyExc_ValueError, "a column of format %s (%zd-byte items)",
                     v->format != NULL ? v->format : "B", v->itemsize);
    else if (v->len != n * v->itemsize)
        PyErr_SetString(PyExc_ValueError, "columns of different lengths");
    else
        return 0;
    PyBuffer_Release(v);
    return -1;
}

static inline double
real_at(const Py_buffer *v, Py_ssize_t i)
{
    double x;
    memcpy(&x, (const char *)v->buf + i * 8, 8);
    return x;
}

static inline unsigned long long
uint_at(const Py_buffer *v, Py_ssize_t i)
{
    const char *p = (const char *)v->buf + i * v->itemsize;
    switch (v->itemsize) {
    case 1:
        return *(const unsigned char *)p;
    case 2: {
        uint16_t x;
        memcpy(&x, p, 2);
        return x;
    }
    case 4: {
        uint32_t x;
        memcpy(&x, p, 4);
        return x;
    }
    default: {
        uint64_t x;
        memcpy(&x, p, 8);
        return x;
    }
    }
}

PyDoc_STRVAR(step_doc,
"step(devs, starts, ends, dsts, dports, packets, octets, protos, flags, classes, i, no_prev,\n"
"     beacon, knowledge) -> int\n\n"
"beacon is (merge_s, min_contacts, min_period_s, max_period_s, max_cv) of the thresholds.\n"
"Take quiet records from index i on (devs, dsts and classes lists, the other columns\n"
"buffers of float64 times or unsigned integers, all of one length; devs holds\n"
"DeviceState or None); returns the index of the first record left to Python, or the\n"
"length.");

static PyObject *
step(PyObject *self, PyObject *args)
{
    PyObject *devs, *dsts, *classes, *no_prev, *knowledge;
    PyObject *objs[COL_COUNT];
    Py_ssize_t i;
    beacon_params bp;
    if (!PyArg_ParseTuple(args, "O!OOO!OOOOOO!nO(ddddd)O", &PyList_Type, &devs,
                          &objs[COL_START], &objs[COL_END], &PyList_Type, &dsts,
                          &objs[COL_DPORT], &objs[COL_PK], &objs[COL_OC], &objs[COL_PROTO],
                          &objs[COL_FLAGS], &PyList_Type, &classes, &i, &no_prev,
                          &bp.merge_s, &bp.min_contacts, &bp.min_period, &bp.max_period,
                          &bp.max_cv, &knowledge))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(devs);
    if (PyList_GET_SIZE(dsts) != n || PyList_GET_SIZE(classes) != n) {
        PyErr_SetString(PyExc_ValueError, "columns of different lengths");
        return NULL;
    }
    Py_buffer cols[COL_COUNT];
    int opened = 0;
    for (; opened < COL_COUNT; opened++)
        if (column_open(objs[opened], &cols[opened], opened <= COL_END, n) < 0)
            break;
    PyObject *out = NULL;
    if (opened < COL_COUNT)
        goto done;
    if (i < 0)
        i = 0;
    for (; i < n; i++) {
        read_ahead(devs, dsts, i, n);
        PyObject *dev = PyList_GET_ITEM(devs, i);
        if (dev == Py_None)
            continue;
        unsigned long long proto = uint_at(&cols[COL_PROTO], i);
        unsigned long long dport = uint_at(&cols[COL_DPORT], i);
        if (proto > LONG_MAX || dport > LONG_MAX)  /* Python's ints judge these */
            break;
        long cls = PyLong_AsLong(PyList_GET_ITEM(classes, i));
        if (cls == -1 && PyErr_Occurred())
            goto done;
        int r = take(dev, real_at(&cols[COL_START], i), real_at(&cols[COL_END], i),
                     PyList_GET_ITEM(dsts, i), uint_at(&cols[COL_PK], i),
                     uint_at(&cols[COL_OC], i), (long)proto, (long)dport,
                     uint_at(&cols[COL_FLAGS], i), cls, no_prev, &bp, knowledge);
        if (r < 0)
            goto done;
        if (r == 0)
            break;
    }
    out = PyLong_FromSsize_t(i);
done:
    while (opened > 0)
        PyBuffer_Release(&cols[--opened]);
    return out;
}

static PyMethodDef fast_methods[] = {
    {"step", step, METH_VARARGS, step_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fast_module = {
    PyModuleDef_HEAD_INIT, "_fast", "The streaming detector's quiet records in C.", -1,
    fast_methods,
};

PyMODINIT_FUNC
PyInit__fast(void)
{
#define NAME(n) if ((names[A_##n] = PyUnicode_InternFromString(#n)) == NULL) return NULL;
    SLOTS(NAME)
    s_known_m = names[A_known];
#undef NAME
    if ((k_zero = PyLong_FromLong(0)) == NULL || (k_one = PyLong_FromLong(1)) == NULL ||
        (k_six = PyLong_FromLong(6)) == NULL || (k_ten = PyLong_FromLong(10)) == NULL ||
        (f_zero = PyFloat_FromDouble(0.0)) == NULL || (f_one = PyFloat_FromDouble(1.0)) == NULL)
        return NULL;
    return PyModule_Create(&fast_module);
}
