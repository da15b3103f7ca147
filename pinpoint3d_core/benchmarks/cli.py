"""
`pinpoint3d bench`: one entry for every benchmark that prints figures.

Each benchmark module keeps its own `main(argv)`; this only chooses which to run, so that
`make bench` and a user typing `pinpoint3d bench model` see the same numbers.
"""

import argparse
import importlib

BENCHMARKS = {
    'synth': 'pinpoint3d_core.benchmarks.synth',
    'model': 'pinpoint3d_core.benchmarks.model',
    'geodesic': 'pinpoint3d_core.benchmarks.geodesic',
}


def add_arguments(parser):
    """Register the benchmark choice; extra arguments go to the chosen benchmark."""
    parser.add_argument('which', choices=sorted(BENCHMARKS) + ['all'],
                        help='benchmark to run (all = every one in turn)')
    parser.add_argument('rest', nargs=argparse.REMAINDER,
                        help='arguments passed to the benchmark (e.g. --sizes 10000)')


def run(args):
    """Run the selected benchmark(s); returns the worst exit code."""
    names = sorted(BENCHMARKS) if args.which == 'all' else [args.which]
    code = 0
    for name in names:
        print(f'== pinpoint3d bench {name} ==', flush=True)
        code = max(code, int(importlib.import_module(BENCHMARKS[name]).main(args.rest) or 0))
    return code
