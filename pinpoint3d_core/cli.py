"""
The ``pinpoint3d`` command line for users without ROS.

Each sub-command lives in the module that owns the concern; this file only dispatches, and it
imports a module only when its sub-command runs so that ``pinpoint3d --help`` stays fast.
"""

import argparse
import importlib
import sys

# sub-command -> (module with add_arguments(parser) and run(args) -> int, one-line help)
COMMANDS = {
    'synth': ('pinpoint3d_core.synth.cli', 'generate part-annotated synthetic scenes'),
    'segment': ('pinpoint3d_core.segment_cli', 'segment a cloud offline from clicks'),
    'train': ('pinpoint3d_core.training.cli', 'train a model from scratch or resume'),
    'train-boundary': ('pinpoint3d_core.training.boundary',
                       'train the boundary network that prices geodesic masks'),
    'package-weights': ('pinpoint3d_core.training.package',
                        "write a preset's weights file from training runs"),
    'evaluate': ('pinpoint3d_core.evaluation.cli', 'evaluate a model or the baseline'),
    'bench': ('pinpoint3d_core.benchmarks.cli', 'print speed and memory figures'),
}


def build_parser():
    """Build the parser with every sub-command registered (lazily imported)."""
    parser = argparse.ArgumentParser(
        prog='pinpoint3d', description='Few-click 3D object and part segmentation.')
    subs = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subs.add_parser(name, help=help_text)
        sub.set_defaults(_module=module_name)
        if name in sys.argv[1:2]:
            importlib.import_module(module_name).add_arguments(sub)
    return parser


def main(argv=None):
    """Run the command line; returns the process exit code."""
    if argv is not None:
        sys.argv = [sys.argv[0]] + list(argv)
    parser = build_parser()
    args = parser.parse_args()
    if not args.command:
        parser.print_help()
        return 2
    from pinpoint3d_core.errors import Pinpoint3DError
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except Pinpoint3DError as exc:
        print(f'pinpoint3d {args.command}: error: {exc}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
