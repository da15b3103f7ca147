"""
The code runs on Python 3.11 (this machine, the PyPI wheels) and 3.12 (Ubuntu Noble, Jazzy).

Checked statically on every Python file of the package: it parses with the grammar of 3.10
(setup.py's python_requires) and 3.12; it compiles with warnings as errors (invalid escape
sequences are a SyntaxWarning in 3.12); and it uses nothing that 3.12 removed (distutils, imp,
asynchat, asyncore, smtpd, the collections ABC aliases, unittest's old assert aliases, ...) or
that numpy 1.26 (Noble's python3-numpy, which the Jazzy message packages are built against)
does not have yet.
"""

import ast
import glob
import os
import sys
import warnings

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDERS = ('pinpoint3d_core', 'pinpoint3d_ros', 'launch', 'test', 'tools', 'docs')

# Modules removed from the standard library by 3.12 (PEP 594 removals start in 3.13 but
# these four went in 3.12 already: distutils by PEP 632, imp, asynchat, asyncore and smtpd).
REMOVED_MODULES = {'distutils', 'imp', 'asynchat', 'asyncore', 'smtpd'}
# Attributes gone in 3.12: module -> names.
REMOVED_ATTRIBUTES = {
    'collections': {'Sequence', 'Mapping', 'MutableMapping', 'Iterable', 'Callable',
                    'MutableSequence', 'Set', 'MutableSet', 'Hashable', 'Sized'},
    'pkgutil': {'ImpImporter', 'ImpLoader'},
    'configparser': {'SafeConfigParser', 'readfp'},
    'locale': {'format'},
    'ssl': {'wrap_socket', 'match_hostname'},
    'gzip': {'GzipFile.filename'},
}
REMOVED_METHODS = {'assertEquals', 'assertNotEquals', 'assert_', 'failUnless', 'failIf',
                   'assertRegexpMatches', 'assertNotRegexpMatches', 'assertRaisesRegexp',
                   'assertDictContainsSubset', 'failUnlessEqual', 'failIfEqual'}
# The one place allowed to restore a removed alias: MinkowskiEngine 0.5.4 reads
# collections.Sequence at import time (pinpoint3d_core/me_shim.py).
SHIM = os.path.join('pinpoint3d_core', 'me_shim.py')
# numpy 2.0 names that numpy 1.26 lacks (Noble's apt numpy): np.<name> must not appear.
NUMPY2_ONLY = {'unique_all', 'unique_counts', 'unique_inverse', 'unique_values', 'concat',
               'astype', 'isdtype', 'vecdot', 'matrix_transpose', 'permute_dims', 'pow',
               'bitwise_count', 'cumulative_sum', 'cumulative_prod', 'trapezoid', 'unstack',
               'acos', 'acosh', 'asin', 'asinh', 'atan', 'atan2', 'atanh', 'long', 'ulong',
               'bitwise_left_shift', 'bitwise_right_shift', 'bitwise_invert'}


def python_files():
    out = [os.path.join(ROOT, 'setup.py')] + sorted(glob.glob(os.path.join(ROOT, 'scripts', '*')))
    for folder in FOLDERS:
        for base, dirs, files in os.walk(os.path.join(ROOT, folder)):
            dirs[:] = [d for d in dirs if not d.startswith(('.', '__'))]
            out += [os.path.join(base, f) for f in sorted(files) if f.endswith('.py')]
    return out


FILES = python_files()


def rel(path):
    return os.path.relpath(path, ROOT)


def source(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def test_files_were_found():
    assert len(FILES) > 50
    assert os.path.join(ROOT, 'pinpoint3d_ros', 'node.py') in FILES


@pytest.mark.parametrize('version', [(3, 10), (3, 11), (3, 12)])
def test_every_file_parses_with_the_grammar_of(version):
    if version > sys.version_info[:2]:
        pytest.skip(f'ast cannot emulate a newer grammar than {sys.version_info[:2]}')
    bad = []
    for path in FILES:
        try:
            ast.parse(source(path), rel(path), feature_version=version)
        except SyntaxError as exc:
            bad.append(f'{rel(path)}:{exc.lineno}: {exc.msg}')
    assert not bad, bad


def test_every_file_compiles_without_warnings():
    """Invalid escapes: DeprecationWarning on 3.11, SyntaxWarning on 3.12, error later."""
    bad = []
    for path in FILES:
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            try:
                compile(source(path), rel(path), 'exec', dont_inherit=True)
            except (SyntaxError, SyntaxWarning, DeprecationWarning) as exc:
                bad.append(f'{rel(path)}: {exc}')
    assert not bad, bad


def _module_aliases(tree):
    """Map local names to the modules they were imported as (import numpy as np -> np)."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:   # `import a.b` binds `a`; `import a.b as c` binds c = a.b
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    aliases[a.name.split('.')[0]] = a.name.split('.')[0]
    return aliases


def removed_uses(path):
    """Return the 3.12 removals and numpy-2-only names one file uses."""
    tree = ast.parse(source(path), rel(path))
    aliases = _module_aliases(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split('.')[0] in REMOVED_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            top = node.module.split('.')[0]
            if top in REMOVED_MODULES:
                found.append(node.module)
            gone = REMOVED_ATTRIBUTES.get(node.module, set())
            found += [f'{node.module}.{a.name}' for a in node.names if a.name in gone]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = aliases.get(node.value.id)
            if node.attr in REMOVED_ATTRIBUTES.get(module, ()):
                found.append(f'{module}.{node.attr}')
            if module == 'numpy' and node.attr in NUMPY2_ONLY:
                found.append(f'numpy.{node.attr} (numpy >= 2 only)')
        if isinstance(node, ast.Attribute) and node.attr in REMOVED_METHODS:
            found.append(f'.{node.attr}()')
    return [f'{rel(path)}:{item}' for item in found]


def test_nothing_removed_in_3_12_is_used():
    bad = []
    for path in FILES:
        uses = removed_uses(path)
        if rel(path) == SHIM:
            uses = [u for u in uses if not u.endswith('collections.Sequence')]
        bad += uses
    assert not bad, bad


def test_the_checker_finds_what_it_looks_for(tmp_path):
    """The scan above is only worth something if it catches each kind of removal."""
    sample = tmp_path / 'old.py'
    sample.write_text(
        'import collections\nimport imp\nfrom distutils.sysconfig import get_python_inc\n'
        'import numpy as np\nfrom pkgutil import ImpImporter\n'
        'x = collections.Sequence\ny = np.trapezoid\nself.assertEquals(1, 1)\n')
    found = ' '.join(removed_uses(str(sample)))
    for expected in ('imp', 'distutils.sysconfig', 'collections.Sequence', 'numpy.trapezoid',
                     'pkgutil.ImpImporter', 'assertEquals'):
        assert expected in found, expected


def test_the_shim_is_the_only_place_that_restores_collections_aliases():
    uses = removed_uses(os.path.join(ROOT, SHIM))
    assert any(u.endswith('collections.Sequence') for u in uses)   # the shim is still needed
    others = [u for path in FILES if rel(path) != SHIM for u in removed_uses(path)
              if 'collections.' in u]
    assert not others, others
