"""
The install scripts, checked without a Noble machine or a GPU.

tools/install_python_deps.sh runs in --dry-run mode (it prints every command and changes
nothing); tools/patch_minkowski.py runs on a small tree laid out like MinkowskiEngine 0.5.4's
source and, when the real sdist is in the cache (tools/build_minkowski.sh keeps it there after
a build), on the real source too.
"""

import ast
import glob
import os
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
import patch_minkowski  # noqa: E402,I100

SHELL_SCRIPTS = sorted(glob.glob(os.path.join(ROOT, 'tools', '*.sh')))


def read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


@pytest.mark.parametrize('script', SHELL_SCRIPTS, ids=os.path.basename)
def test_shell_scripts_parse(script):
    proc = subprocess.run(['bash', '-n', script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_dry_run_installs_cpu_torch_open3d_rosbags_and_builds_minkowski(tmp_path):
    venv = tmp_path / 'venv'
    env = dict(os.environ, ROS_DISTRO='jazzy')
    env.pop('TORCH_INDEX_URL', None)
    proc = subprocess.run(['bash', os.path.join(ROOT, 'tools', 'install_python_deps.sh'),
                           '--dry-run', '--venv', str(venv)],
                          capture_output=True, text=True, env=env, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert not venv.exists()   # a dry run changes nothing
    commands = [line for line in out.splitlines() if line.startswith('[deps] would run:')]
    text = '\n'.join(commands)
    assert '--system-site-packages' in text and str(venv) in text
    assert 'whl/cpu' in text and 'torch==' in text             # the CPU wheel by default
    assert 'open3d' in text and 'rosbags==' in text
    assert 'build_minkowski.sh' in text
    assert all(' -c ' in c for c in commands if 'pip install' in c)   # numpy constraint
    pins = read(os.path.join(ROOT, 'requirements.txt'))
    for line in commands:
        for spec in ('torch==', 'rosbags=='):
            if spec in line:
                version = line.split(spec)[1].split()[0]
                assert f'{spec}{version}' in pins   # one source for the versions


def test_setup_keeps_the_minkowski_cache_key():
    """A cached wheel must keep being found: wheels/torch-<version>-<cpu|cuNNN>/."""
    build = read(os.path.join(ROOT, 'tools', 'build_minkowski.sh'))
    assert 'wheeldir="$cache/wheels/torch-$tver-$variant"' in build
    assert 'MinkowskiEngine-0.5.4-"$pytag"-*.whl' in build   # per Python tag, no cp311 on 3.12
    setup = read(os.path.join(ROOT, 'tools', 'setup.sh'))
    assert 'tools/build_minkowski.sh' in setup and 'pip wheel' not in setup
    assert 'cache="${PINPOINT3D_CACHE:-$HOME/.cache/pinpoint3d}"' in setup


def fake_minkowski_tree(root):
    """Lay out the lines the patches anchor on, as in MinkowskiEngine 0.5.4."""
    src = root / 'src'
    (src / '3rdparty').mkdir(parents=True)
    (root / 'setup.py').write_text(
        'import os\nfrom sys import argv\n\n\ndef _argparse(p, argv, f=True):\n'
        '    return False, argv\n\n\ndef run_command(*a):\n    pass\n\n\n'
        'run_command("rm", "-rf", "build")\n'
        'run_command("pip", "uninstall", "MinkowskiEngine", "-y")\n'
        'BLAS, argv = _argparse("--blas", argv, False)\n'
        'if BLAS is False:\n    import numpy.distutils.system_info as sysinfo\n')
    (src / 'spmm.cu').write_text(
        '#include "gpu.cuh"\n#include <ATen/cuda/CUDAContext.h>\n'
        '#include <ATen/cuda/CUDAUtils.h>\n#include <torch/extension.h>\n'
        'void f() { thrust::sort_by_key(thrust::device, a, b, thrust::make_zip_iterator('
        'thrust::make_tuple(c, d))); }\n')
    (src / '3rdparty' / 'concurrent_unordered_map.cuh').write_text(
        '#ifndef CUM\n#define CUM\n#include <thrust/pair.h>\n'
        'int n = thrust::count_if(thrust::device, a, b, p);\n#endif\n')
    (src / 'coordinate_map_gpu.cu').write_text(
        '#include "gpu.cuh"\nvoid g() { thrust::remove_if(a); thrust::unique(b); }\n')
    (src / 'quantization.cpp').write_text('#include <vector>\nint thrust_free = 0;\n')
    return root


def test_patches_add_what_cuda_12_needs_and_are_idempotent(tmp_path):
    tree = fake_minkowski_tree(tmp_path / 'me')
    report = patch_minkowski.apply_all(str(tree))
    assert report['setup.py'] == ['blas-env', 'no-uninstall'] and report['spmm']
    spmm = (tree / 'src' / 'spmm.cu').read_text()
    for header in ('execution_policy.h', 'sort.h', 'iterator/zip_iterator.h', 'tuple.h'):
        assert f'#include <thrust/{header}>' in spmm
    assert spmm.index('<torch/extension.h>') < spmm.index('<ATen/cuda/CUDAUtils.h>')
    cmap = (tree / 'src' / 'coordinate_map_gpu.cu').read_text()
    assert '#include <thrust/remove.h>' in cmap and '#include <thrust/unique.h>' in cmap
    cum = (tree / 'src' / '3rdparty' / 'concurrent_unordered_map.cuh').read_text()
    assert '#include <thrust/execution_policy.h>' in cum
    assert cum.index('#ifndef CPU_ONLY') > cum.index('#define CUM')   # inside the guard
    assert (tree / 'src' / 'quantization.cpp').read_text().count('#include') == 1
    setup = (tree / 'setup.py').read_text()
    ast.parse(setup)
    assert 'run_command("pip"' not in setup and 'MINKOWSKI_BLAS' in setup
    before = {p: p.read_text() for p in tree.rglob('*') if p.is_file()}
    again = patch_minkowski.apply_all(str(tree))
    assert again == {'setup.py': [], 'thrust': [], 'spmm': False}
    assert before == {p: p.read_text() for p in tree.rglob('*') if p.is_file()}


def test_blas_env_patch_keeps_numpy_distutils_out(tmp_path):
    tree = fake_minkowski_tree(tmp_path / 'me')
    patch_minkowski.apply_all(str(tree))
    code = (tree / 'setup.py').read_text() + '\nprint(BLAS)\n'
    env = dict(os.environ, MINKOWSKI_BLAS='openblas')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          env=env, cwd=tree)
    assert proc.returncode == 0 and proc.stdout.strip() == 'openblas', proc.stderr


def test_a_changed_source_stops_the_build(tmp_path):
    tree = fake_minkowski_tree(tmp_path / 'me')
    (tree / 'src' / 'spmm.cu').write_text('#include "gpu.cuh"\nint x = thrust::reduce(a);\n')
    with pytest.raises(patch_minkowski.PatchError, match='torch-tensor'):
        patch_minkowski.apply_all(str(tree))
    assert patch_minkowski.main([str(tmp_path / 'nowhere')]) == 1


def test_cxx_shim_qualifies_the_unqualified_call(tmp_path):
    header = tmp_path / 'shared_ptr_base.h'
    header.write_text('auto __raw = __to_address(__r.get());\n'
                      'return std::__to_address(p);\nx.__to_address(q);\n')
    out = patch_minkowski.write_cxx_shim(str(tmp_path / 'shim'), str(header))
    text = open(out).read()
    assert out.endswith(os.path.join('bits', 'shared_ptr_base.h'))
    assert 'auto __raw = std::__to_address(__r.get());' in text
    assert 'std::std::' not in text
    done = tmp_path / 'done.h'
    done.write_text('auto __raw = std::__to_address(__r.get());\n')
    assert patch_minkowski.write_cxx_shim(str(tmp_path / 'shim2'), str(done)) is None


def test_cxx_shim_on_this_compilers_libstdcxx(tmp_path):
    header = patch_minkowski.system_header('bits/shared_ptr_base.h')
    if header is None:
        pytest.skip('no C++ compiler with libstdc++ here')
    out = patch_minkowski.write_cxx_shim(str(tmp_path))
    if out is None:
        pytest.skip(f'{header} already qualifies __to_address')
    assert 'std::__to_address(__r.get())' in open(out).read()
    # The shim goes first on the include path and the standard header still compiles.
    program = '#include <memory>\nint main() { return *std::make_shared<int>(0); }\n'
    proc = subprocess.run(['c++', '-x', 'c++', '-std=c++17', '-fsyntax-only', f'-I{tmp_path}',
                           '-'], input=program, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_patches_apply_to_the_real_minkowski_source(tmp_path):
    cache = os.environ.get('PINPOINT3D_CACHE', os.path.expanduser('~/.cache/pinpoint3d'))
    sdist = os.path.join(cache, 'src', 'MinkowskiEngine-0.5.4.tar.gz')
    if not os.path.isfile(sdist):
        pytest.skip(f'{sdist} not cached (tools/build_minkowski.sh keeps it after a build)')
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, filter='data')
    src = tmp_path / 'MinkowskiEngine-0.5.4'
    report = patch_minkowski.apply_all(str(src))
    changed = set(report['thrust'])
    # The four files of MinkowskiEngine issue #543's CUDA 12 fix, and more.
    for name in ('src/coordinate_map_gpu.cu', 'src/spmm.cu',
                 'src/3rdparty/concurrent_unordered_map.cuh'):
        assert name in changed, name
    assert '#include <thrust/remove.h>' in (src / 'src' / 'coordinate_map_gpu.cu').read_text()
    assert '#include <thrust/reduce.h>' in (src / 'src' / 'spmm.cu').read_text()
    ast.parse((src / 'setup.py').read_text())
