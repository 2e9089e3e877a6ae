"""Build configuration for the optional compiled kernel (metadata lives in pyproject.toml).

``fairmt_opt.qp._qpkernel`` (the active-set simplex QP) is a plain C shared object (no Python
API) loaded with ctypes by ``fairmt_opt.qp._kernel``. It is optional: without a C compiler the
build skips it and the library uses the Python implementation of the same algorithm.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "fairmt_opt.qp._qpkernel",
            ["fairmt_opt/qp/_qpkernel.c"],
            optional=True,
            extra_compile_args=["-O3", "-fno-wrapv"],  # after the interpreter's -fwrapv
        ),
    ]
)
