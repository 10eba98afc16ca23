#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Run the parser's tests; write their counts as suite "parser" for report."""

import argparse
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--kunit', required=True, help="the base tree's kunit.py")
    ap.add_argument('--json', required=True, help='where to write the counts')
    args = ap.parse_args()
    os.environ['HMM_KUNIT_PY'] = args.kunit
    sys.path.insert(0, HERE)
    suite = unittest.defaultTestLoader.discover(HERE, pattern='test_*.py')
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    bad = [(t, 'failed') for t, _ in result.failures] + \
          [(t, 'crashed') for t, _ in result.errors]
    failed = len(bad)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    with open(args.json, 'w') as f:
        json.dump({'flavour': '', 'console': args.json, 'problems': [],
                   'suites': [{'suite': 'parser', 'passed': passed,
                               'failed': failed, 'skipped': skipped,
                               'skipped_tests': [t.id() for t, _ in
                                                 result.skipped],
                               'failures': [{'test': t.id(), 'why': why,
                                             'where': 'build/check/parser.log'}
                                            for t, why in bad]}]},
                  f, indent=2)
    print('%d passed, %d failed, %d skipped' % (passed, failed, skipped))
    sys.exit(0 if result.wasSuccessful() and not skipped else 1)


if __name__ == '__main__':
    main()
