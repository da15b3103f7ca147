#!/usr/bin/env python3
"""
Make the MinkowskiEngine 0.5.4 source (the PyPI sdist) build on today's toolchains.

Usage: patch_minkowski.py SRC_DIR [--cxx-shim DIR]

Every patch is idempotent (a marker line says it is applied), says why it is needed, and stops
the build with an error when its anchor is missing, so a changed source is noticed rather than
half patched. None of them changes what the library computes.

  blas-env       setup.py looks BLAS up through numpy.distutils whenever --blas is not on the
                 command line, which is the case in pip's and setuptools' metadata pass;
                 numpy.distutils does not exist on Python >= 3.12. MINKOWSKI_BLAS=openblas
                 (set by tools/build_minkowski.sh) now answers that question instead.
  no-uninstall   setup.py runs `pip uninstall MinkowskiEngine -y` with whatever pip is first on
                 PATH, which can remove MinkowskiEngine from an unrelated active environment.
  thrust         CUDA 12 (thrust 2 / CCCL) no longer includes its algorithms transitively:
                 "namespace thrust has no member device / remove_if / sort_by_key / unique"
                 (MinkowskiEngine issues #543, #594, #601, #638). Each .cu/.cuh file now
                 includes the thrust header of every thrust name it uses, for CUDA builds only.
  torch-tensor   src/spmm.cu includes ATen/cuda/CUDAUtils.h before the complete at::Tensor
                 ("incomplete class type at::Tensor", torch >= 1.11 with CUDA; upstream PR
                 #481, merged after the 0.5.4 release).
  --cxx-shim     CUDA >= 12.4 with libstdc++: "more than one instance of overloaded function
                 std::__to_address" (issue #596), because libstdc++'s shared_ptr_base.h calls
                 __to_address unqualified and argument-dependent lookup also finds
                 cuda::std::__to_address. Instead of editing the system header (the usual
                 advice), a patched copy with the call qualified is written to DIR/bits/, to be
                 put first on nvcc's include path (tools/build_minkowski.sh does that).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

MARK = 'pinpoint3d-patch'

# thrust name -> the header that declares it (thrust 1.x and 2.x agree on these).
THRUST_HEADERS = {
    'device': 'execution_policy.h', 'host': 'execution_policy.h',
    'sort': 'sort.h', 'sort_by_key': 'sort.h', 'stable_sort': 'sort.h',
    'stable_sort_by_key': 'sort.h',
    'unique': 'unique.h', 'unique_by_key': 'unique.h', 'unique_copy': 'unique.h',
    'remove': 'remove.h', 'remove_if': 'remove.h', 'remove_copy_if': 'remove.h',
    'reduce': 'reduce.h', 'reduce_by_key': 'reduce.h',
    'sequence': 'sequence.h', 'count': 'count.h', 'count_if': 'count.h',
    'copy': 'copy.h', 'copy_if': 'copy.h', 'copy_n': 'copy.h',
    'fill': 'fill.h', 'fill_n': 'fill.h', 'transform': 'transform.h',
    'for_each': 'for_each.h', 'for_each_n': 'for_each.h',
    'inclusive_scan': 'scan.h', 'exclusive_scan': 'scan.h',
    'counting_iterator': 'iterator/counting_iterator.h',
    'make_counting_iterator': 'iterator/counting_iterator.h',
    'constant_iterator': 'iterator/constant_iterator.h',
    'make_constant_iterator': 'iterator/constant_iterator.h',
    'zip_iterator': 'iterator/zip_iterator.h', 'make_zip_iterator': 'iterator/zip_iterator.h',
    'tuple': 'tuple.h', 'make_tuple': 'tuple.h', 'get': 'tuple.h',
    'pair': 'pair.h', 'make_pair': 'pair.h',
    'device_vector': 'device_vector.h', 'host_vector': 'host_vector.h',
    'equal_to': 'functional.h', 'minimum': 'functional.h', 'maximum': 'functional.h',
    'plus': 'functional.h', 'unary_function': 'functional.h',
    'system_error': 'system_error.h',
}


class PatchError(RuntimeError):
    """The source does not look like MinkowskiEngine 0.5.4 where a patch expects it."""


def _read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def _write(path, text):
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)


def _replace_once(path, anchor, replacement, name):
    """Replace ``anchor`` by ``replacement`` in ``path`` unless the patch is already there."""
    text = _read(path)
    if f'{MARK}: {name}' in text:
        return False
    if text.count(anchor) != 1:
        raise PatchError(f'{name}: expected one "{anchor.strip()}" in {path}, '
                         f'found {text.count(anchor)}')
    _write(path, text.replace(anchor, replacement))
    return True


def patch_setup_py(src):
    """Apply blas-env and no-uninstall to setup.py; return the names applied."""
    path = os.path.join(src, 'setup.py')
    done = []
    anchor = 'BLAS, argv = _argparse("--blas", argv, False)\n'
    if _replace_once(path, anchor, anchor + (
            f'# {MARK}: blas-env (no numpy.distutils on Python >= 3.12)\n'
            'if BLAS is False and os.environ.get("MINKOWSKI_BLAS"):\n'
            '    BLAS = os.environ["MINKOWSKI_BLAS"]\n'), 'blas-env'):
        done.append('blas-env')
    anchor = 'run_command("pip", "uninstall", "MinkowskiEngine", "-y")\n'
    if _replace_once(path, anchor,
                     f'# {MARK}: no-uninstall (it used the first pip on PATH)\n', 'no-uninstall'):
        done.append('no-uninstall')
    return done


def thrust_includes(text):
    """Return the sorted thrust headers that ``text`` needs for the thrust names it uses."""
    names = set(re.findall(r'\bthrust::([A-Za-z_]\w*)', text))
    return sorted({f'thrust/{THRUST_HEADERS[n]}' for n in names if n in THRUST_HEADERS})


def patch_thrust(src):
    """Add the explicit thrust includes to every .cu/.cuh file; return the files changed."""
    changed = []
    for base, _, files in os.walk(os.path.join(src, 'src')):
        for name in sorted(files):
            if not name.endswith(('.cu', '.cuh')):
                continue
            path = os.path.join(base, name)
            text = _read(path)
            headers = thrust_includes(text)
            if not headers or f'{MARK}: thrust' in text:
                continue
            lines = text.splitlines(keepends=True)
            first = next((i for i, line in enumerate(lines) if line.startswith('#include')),
                         None)
            if first is None:
                raise PatchError(f'thrust: no #include line in {path}')
            block = ([f'// {MARK}: thrust (CUDA 12 no longer includes these transitively)\n',
                      '#ifndef CPU_ONLY\n']
                     + [f'#include <{h}>\n' for h in headers] + ['#endif\n'])
            _write(path, ''.join(lines[:first] + block + lines[first:]))
            changed.append(os.path.relpath(path, src))
    if not changed and not any(f'{MARK}: thrust' in _read(os.path.join(b, f))
                               for b, _, fs in os.walk(os.path.join(src, 'src'))
                               for f in fs if f.endswith(('.cu', '.cuh'))):
        raise PatchError(f'thrust: no file under {src}/src uses thrust; wrong source tree?')
    return changed


def patch_spmm(src):
    """Apply torch-tensor to src/spmm.cu; return True when it changed the file."""
    anchor = '#include <ATen/cuda/CUDAUtils.h>\n'
    return _replace_once(os.path.join(src, 'src', 'spmm.cu'), anchor,
                         f'// {MARK}: torch-tensor (at::Tensor complete before CUDAUtils.h)\n'
                         '#include <torch/extension.h>\n' + anchor, 'torch-tensor')


def system_header(name, compiler=None):
    """Return the path the C++ compiler uses for ``<name>`` (via -H), or None."""
    compiler = compiler or os.environ.get('CXX') or 'c++'
    if shutil.which(compiler) is None:
        return None
    proc = subprocess.run([compiler, '-x', 'c++', '-std=c++17', '-H', '-fsyntax-only', '-'],
                          input=b'#include <memory>\n', capture_output=True)
    for line in proc.stderr.decode(errors='replace').splitlines():
        path = line.lstrip('. ').strip()
        if path.endswith('/' + name):
            return path
    return None


def write_cxx_shim(shim_dir, header=None):
    """Write a qualified copy of libstdc++'s shared_ptr_base.h; return its path or None."""
    header = header or system_header('bits/shared_ptr_base.h')
    if header is None:
        return None
    text = _read(header)
    fixed, count = re.subn(r'(?<![\w:])__to_address\(', 'std::__to_address(', text)
    if not count:
        return None   # this libstdc++ qualifies the call already: nothing to shim
    out = os.path.join(shim_dir, 'bits', 'shared_ptr_base.h')
    os.makedirs(os.path.dirname(out), exist_ok=True)
    _write(out, f'// {MARK}: copy of {header} with {count} __to_address call(s) qualified '
                '(MinkowskiEngine #596)\n' + fixed)
    return out


def apply_all(src, shim_dir=None):
    """Apply every source patch (and the shim when asked); return a report dict."""
    if not os.path.isfile(os.path.join(src, 'setup.py')):
        raise PatchError(f'{src} has no setup.py: not a MinkowskiEngine source tree')
    report = {'setup.py': patch_setup_py(src), 'thrust': patch_thrust(src),
              'spmm': patch_spmm(src)}
    if shim_dir:
        report['cxx_shim'] = write_cxx_shim(shim_dir)
    return report


def main(argv=None):
    """Patch the tree given on the command line and say what was done."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('src')
    parser.add_argument('--cxx-shim', help='write the __to_address header shim here')
    args = parser.parse_args(argv)
    try:
        report = apply_all(args.src, args.cxx_shim)
    except PatchError as exc:
        print(f'patch_minkowski: ERROR: {exc}', file=sys.stderr)
        return 1
    for key, value in report.items():
        print(f'patch_minkowski: {key}: {value or "already applied / not needed"}',
              file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
