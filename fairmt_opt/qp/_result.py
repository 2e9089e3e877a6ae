"""The result object of :func:`~fairmt_opt.solve_simplex_qp` (certificate fields computed on
first access) and the fast constructor of the kernel's optimal results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._utils.array import is_numpy, to_numpy
from ..certificates._qp import KKTResiduals, _residuals

__all__ = ["SimplexQPResult"]

#: the lazy certificate fields of a host result: ``(x, g, b'x, scale)`` or
#: ``(x, g, b'x, scale, shift, unit)`` with ``x`` the float64 solution, ``g`` the gradient
#: :math:`(Kx + b - \mathrm{shift})/\mathrm{unit}` (shift 0 and unit 1 when omitted),
#: ``scale`` the data scale in the units of ``g`` (:func:`~fairmt_opt.certificates.data_scale`)
#: (``g`` may also be its float64 bytes, ``ndarray.tobytes``: a cheaper copy of a buffer)
Lazy = (tuple[np.ndarray, np.ndarray | bytes, float, float]
        | tuple[np.ndarray, np.ndarray | bytes, float, float, float, float])
#: what a result stores until a certificate field is first read: the fields themselves, or a
#: function of no argument that computes them then (the closed form of ``T <= 2`` defers even
#: its gradient: a training loop that reads only ``x`` does not pay for it)
LazySource = Lazy | Callable[[], Lazy]


def _fmt(v: Any) -> str:
    if isinstance(v, (float, int, np.floating)):
        return f"{float(v):.6g}"
    shape = tuple(getattr(v, "shape", ()))
    return f"<array shape={shape}>" if shape else repr(v)


class SimplexQPResult:
    r"""Result of :func:`solve_simplex_qp`.

    Attributes
    ----------
    x : array, shape (T,) or (..., T) for ``apg``
        The solution, in the caller's array type, device and floating dtype.
    fun : float or array
        :math:`f(x) = \tfrac12 x^\top K x + b^\top x` (an array of the batch shape for ``apg``).
    gap : float or array
        Frank–Wolfe gap :math:`x^\top g - \min_t g_t \ge f(x) - f^\star`, :math:`g = Kx + b`.
    kkt : KKTResiduals
        Primal, dual and complementarity residuals (see :func:`certify_simplex_qp`); arrays of
        the batch shape for ``apg``.
    nit : int
        Iterations: working-set changes (block exchanges, additions and removals; 0 when a
        warm start was already optimal) for ``active_set``, steps
        (Frank–Wolfe family), the fixed count (``apg``), the backend's count (``daqp``).
    active_set : array
        Support of ``x``: sorted int64 NumPy indices for host methods; a boolean array
        ``x > 0`` of the caller's type for ``apg``.
    status : int
        0 converged, 1 iteration limit reached, 2 fixed iteration count run (``apg``: no
        convergence test, to avoid host synchronisation), 3 backend failure.
    success : bool
        ``status in (0, 2)``.
    message : str
        Human-readable status.
    method : str
        The method used.

    For the host methods ``fun``, ``gap``, ``kkt`` and ``active_set`` are computed on first
    access from the stored gradient (a few NumPy calls that a training loop reading only ``x``
    does not pay for); the result is immutable. As in :func:`certify_simplex_qp`, the gap and
    the residuals are read on :math:`b - \min_t b_t` (the same on the simplex; a large common
    offset of ``b`` would otherwise absorb :math:`Kx` in round-off), from the gradient
    :math:`(Kx + b - \min_t b_t)/u` of the problem as the solver scaled it (:math:`u` its data
    scale: no overflow near the float range), and reported in the caller's units
    (:math:`f = \tfrac12\lambda + \tfrac12 b^\top x` with :math:`\lambda = x^\top(Kx + b)`).
    """

    __slots__ = ("_active_set", "_fun", "_gap", "_kkt", "_lazy", "_message", "method", "nit",
                 "status", "success", "x")
    x: Any
    nit: int
    status: int
    success: bool
    method: str
    _message: str | tuple[float, float, float]
    _fun: Any
    _gap: Any
    _kkt: KKTResiduals | None
    _active_set: Any
    _lazy: LazySource | None

    def __init__(
        self,
        *,
        x: Any,
        nit: int,
        status: int,
        success: bool,
        message: str,
        method: str,
        fun: Any = None,
        gap: Any = None,
        kkt: KKTResiduals | None = None,
        active_set: Any = None,
        lazy: LazySource | None = None,
    ) -> None:
        for name, value in (
            ("x", x), ("nit", nit), ("status", status), ("success", success),
            ("_message", message), ("method", method), ("_fun", fun), ("_gap", gap),
            ("_kkt", kkt), ("_active_set", active_set),
            ("_lazy", lazy),  # host methods: see Lazy
        ):
            object.__setattr__(self, name, value)

    def _evaluate(self) -> None:
        source = self._lazy
        assert source is not None
        lazy = source() if callable(source) else source
        xn, g, bx, scale = lazy[:4]
        if isinstance(g, bytes):
            g = np.frombuffer(g)
        gap, lam, res = _residuals(xn, g, scale)  # the certificate's reading of g
        if len(lazy) == 6:
            shift, unit = lazy[4:]
            gap *= unit  # back to the caller's units: lambda = x^T (K x + b)
            lam = lam * unit + shift * float(xn.sum())
        object.__setattr__(self, "_fun", 0.5 * lam + 0.5 * bx)  # no overflow near the range
        object.__setattr__(self, "_gap", gap)
        object.__setattr__(self, "_kkt", res)
        object.__setattr__(self, "_active_set", np.flatnonzero(xn > 0.0))
        object.__setattr__(self, "_lazy", None)

    @property
    def message(self) -> str:
        m = self._message
        if type(m) is not str:  # the kernel's (mode, outer steps, gap): worded on first read
            from ._active_set import kernel_message

            m = kernel_message(*m)  # type: ignore[misc]
            object.__setattr__(self, "_message", m)
        return m  # type: ignore[return-value]

    @property
    def fun(self) -> Any:
        if self._lazy is not None:
            self._evaluate()
        return self._fun

    @property
    def gap(self) -> Any:
        if self._lazy is not None:
            self._evaluate()
        return self._gap

    @property
    def kkt(self) -> KKTResiduals:
        if self._lazy is not None:
            self._evaluate()
        assert self._kkt is not None
        return self._kkt

    @property
    def active_set(self) -> Any:
        if self._lazy is not None:
            self._evaluate()
        return self._active_set

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"SimplexQPResult is immutable: cannot set {name!r}")

    def __repr__(self) -> str:
        x = self.x
        shape = tuple(getattr(x, "shape", ()))
        if len(shape) == 1 and shape[0] <= 8:
            xs = np.array2string(to_numpy(x), precision=6, separator=", ")
        else:
            xs = f"<array shape={shape}>"
        act = self.active_set
        if is_numpy(act) and act.ndim == 1 and act.dtype.kind in "iu" and act.size <= 12:
            acts = np.array2string(act, separator=", ")
        else:
            acts = f"<array shape={tuple(getattr(act, 'shape', ()))}>"
        return (
            f"SimplexQPResult(method={self.method!r}, success={self.success}, "
            f"status={self.status}, message={self.message!r}, fun={_fmt(self.fun)}, "
            f"gap={_fmt(self.gap)}, nit={self.nit}, x={xs}, active_set={acts}, "
            f"kkt={self.kkt!r})"
        )


class _Filling(SimplexQPResult):
    """A :class:`SimplexQPResult` being filled in by :func:`_kernel_result`: the same layout
    with plain attribute writes; its class is then set to :class:`SimplexQPResult`
    (immutable), so that the result is exactly one (a fifth of the cost of the seven slot
    setters it replaces)."""

    __slots__ = ()
    __setattr__ = object.__setattr__  # type: ignore[assignment]


_new = object.__new__
# slot setters (bound once) of a result already built: the closed form of T <= 2 sets x to
# the caller's array type afterwards
_set_x = SimplexQPResult.__dict__["x"].__set__


def _kernel_result(x: Any, nit: int, message: str | tuple[float, float, float],
                   lazy: LazySource) -> SimplexQPResult:
    """An optimal ``active_set`` result (``status`` 0); the lazy fields ``_fun``, ``_gap``,
    ``_kkt`` and ``_active_set`` are written by ``_evaluate`` before they are first read;
    ``message`` is a string, or the kernel's ``(mode, outer steps, gap)`` that
    :func:`~fairmt_opt.qp._active_set.kernel_message` words when it is first read."""
    res = _new(_Filling)
    res.x = x
    res.nit = nit
    res.status = 0
    res.success = True
    res._message = message
    res.method = "active_set"
    res._lazy = lazy
    res.__class__ = SimplexQPResult  # type: ignore[assignment]
    return res
