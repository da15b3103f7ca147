"""
Numpy's BLAS on one thread while a surface graph is built (``one_blas_thread``).

The graph's matrix products are (N, 3) by (3,): too small to be worth sharing, yet OpenBLAS
splits them over every core, and its idle workers then spin for a while, taking CPU from the
single-threaded numpy and scipy work that follows. On a 2-core machine shared with other jobs
that made the tabletop graph build about a quarter slower (docs/benchmarks.md, "Geodesic
masks"). A product split over rows gives the same bits on one thread as on several. Where
numpy's BLAS is not the bundled OpenBLAS (or its controls are not found) nothing changes.
"""

import contextlib
import ctypes
import glob
import os
import threading

import numpy as np

_LOCK = threading.Lock()
_CONTROLS = None     # (set, get) of the OpenBLAS numpy uses; False when not found


def _controls():
    global _CONTROLS
    if _CONTROLS is None:
        _CONTROLS = False
        folder = os.path.join(os.path.dirname(np.__file__), os.pardir, 'numpy.libs')
        for path in sorted(glob.glob(os.path.join(folder, '*openblas*'))):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix, suffix in (('scipy_openblas', '64_'), ('scipy_openblas', ''),
                                   ('openblas', '64_'), ('openblas', '')):
                setter = getattr(lib, f'{prefix}_set_num_threads{suffix}', None)
                getter = getattr(lib, f'{prefix}_get_num_threads{suffix}', None)
                if setter is not None and getter is not None:
                    setter.argtypes, setter.restype = [ctypes.c_int], None
                    getter.argtypes, getter.restype = [], ctypes.c_int
                    _CONTROLS = (setter, getter)
                    return _CONTROLS
    return _CONTROLS


@contextlib.contextmanager
def one_blas_thread():
    """Run the block with numpy's OpenBLAS on one thread, then restore its thread count."""
    controls = _controls()
    if not controls:
        yield
        return
    setter, getter = controls
    with _LOCK:
        before = int(getter())
        if before > 1:
            setter(1)
    try:
        yield
    finally:
        if before > 1:
            with _LOCK:
                setter(before)
