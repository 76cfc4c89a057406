"""Build of the optional C extension; the project's metadata lives in pyproject.toml.

``simtrust.subscriber.auc._native`` (batched HMAC-SHA-256 on OpenSSL's libcrypto)
is optional: without a C compiler or the OpenSSL headers the package installs
anyway and the AuC uses its pure-Python key derivation.
``simtrust.flows._native`` (bulk decoding of fixed-length IPFIX / NetFlow v9
data sets) is optional the same way: without it the flow decoder stays on its
pure-Python path, which is also the reference the tests compare it with.
``simtrust.flows._rx`` (recvmmsg batches decoded into columns) is optional too:
without it the collector receives one datagram at a time in Python.
``simtrust.detect._fast`` (the streaming detector's quiet records of a column
batch) is optional too: without it ``Detector.observe_columns`` runs
``observe``'s body in Python for every record.
``simtrust.policy._counters`` (the usage counters of a column batch in one
ordered pass) is optional too: without it ``PolicyEngine.ingest_columns``
counts with numpy.
``simtrust.diameter._native`` (the Diameter AVP walk) is optional too: without it
the codec walks AVPs in Python, the reference the tests compare it with.
``simtrust.sbi._native`` (HPACK Huffman decoding) is optional too: without it the
SBI's HPACK decoder leaves every literal to the ``hpack`` library.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "simtrust.subscriber.auc._native",
            sources=["src/simtrust/subscriber/auc/_native.c"],
            libraries=["crypto"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
        Extension(
            "simtrust.flows._native",
            sources=["src/simtrust/flows/_native.c"],
            depends=["src/simtrust/flows/_flowcommon.h"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
        Extension(
            "simtrust.flows._rx",
            sources=["src/simtrust/flows/_rx.c"],
            depends=["src/simtrust/flows/_flowcommon.h"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
        Extension(
            "simtrust.detect._fast",
            sources=["src/simtrust/detect/_fast.c"],
            # observe's float arithmetic, operation for operation (no fused multiply-add)
            extra_compile_args=["-O2", "-ffp-contract=off"],
            optional=True,
        ),
        Extension(
            "simtrust.diameter._native",
            sources=["src/simtrust/diameter/_native.c"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
        Extension(
            "simtrust.sbi._native",
            sources=["src/simtrust/sbi/_native.c"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
        Extension(
            "simtrust.policy._counters",
            sources=["src/simtrust/policy/_counters.c"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
    ]
)
