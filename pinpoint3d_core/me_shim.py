"""
The one place that imports MinkowskiEngine.

MinkowskiEngine 0.5.4 still uses ``collections.Sequence``, which Python 3.10 removed; the alias
must exist before the import. Keeping this in one module means no other file needs to know.
"""

import collections
import collections.abc

_ME = None


def import_minkowski():
    """Return the MinkowskiEngine module, or raise ImportError with the fix."""
    global _ME
    if _ME is None:
        if not hasattr(collections, 'Sequence'):
            collections.Sequence = collections.abc.Sequence
        try:
            import MinkowskiEngine as me
        except ImportError as exc:
            raise ImportError(
                'MinkowskiEngine is not installed in this environment: run `make setup` '
                '(it builds MinkowskiEngine 0.5.4 once and caches the wheel). '
                f'Original error: {exc}') from exc
        _ME = me
    return _ME
