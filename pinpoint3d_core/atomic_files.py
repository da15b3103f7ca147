"""
Write result files so that a reader never sees half of one.

A file is written under a temporary name in the same directory, flushed to disk, then renamed
onto its final name with os.replace, which is atomic on POSIX file systems: a process polling
for the file finds either nothing (or the previous version) or the complete new one. Readers
need no retry loop for partial files.
"""

from contextlib import contextmanager
import os
import tempfile


@contextmanager
def atomic_path(path):
    """
    Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    The temporary name keeps the extension of ``path`` (writers such as numpy's savez and
    matplotlib's savefig pick their format from it). On an exception it is removed and
    ``path`` is left as it was.
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    ext = os.path.splitext(name)[1]
    fd, tmp = tempfile.mkstemp(prefix=f'.{name}.', suffix=f'.tmp{ext}', dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)   # as open() would create it (mkstemp makes it 0600)
    try:
        yield tmp
        with open(tmp, 'rb+') as f:   # data on disk before the name points at it
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
