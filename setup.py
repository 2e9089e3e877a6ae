"""Build configuration for the optional compiled kernels (metadata lives in pyproject.toml).

``fairmt_opt._qpkernel`` (the active-set QP) and ``fairmt_opt.fairness._fairkernel`` (the
masked losses and soft violations of a CPU training step) are plain C shared objects (no Python
API) loaded with ctypes by ``fairmt_opt.qp._kernel`` and ``fairmt_opt.fairness._kernel``. Both
are optional: without a C compiler the build skips them and the library uses its Python / torch
implementations.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "fairmt_opt.qp._qpkernel",
            ["fairmt_opt/qp/_qpkernel.c"],
            optional=True,
            extra_compile_args=["-O3"],
        ),
        Extension(
            "fairmt_opt.fairness._fairkernel",
            ["fairmt_opt/fairness/_fairkernel.c"],
            optional=True,
            extra_compile_args=["-O3"],
        ),
    ]
)
