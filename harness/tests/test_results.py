# SPDX-License-Identifier: GPL-2.0
"""The parser's tests: recorded console logs and the verdict each must get.

clean.log is a real console of `make check` (upstream's hmm-tests, 58/58).
The others are that log with one thing wrong, each a situation the parser
must report: a failed or skipped test, a kernel report in a test, outside
the tests or during boot, a guest that hangs or vanishes, a suite without a
plan or one that never started. kunit-failed.log is a real console with
suite kunit (nested KTAP from debugfs) and one failing parameter.
kmemleak-*.log are the debug kernel's: suite kmemleak as one section per
check (after boot, after each suite), clean or with a leak. limit.log is
clean.log stopped by the guest at the suite's time limit. glued-*.log
are clean.log with a kernel message printed on a marker's line.
"""

import contextlib
import io
import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import results  # noqa: E402

KUNIT = os.environ.get('HMM_KUNIT_PY', results.DEFAULT_KUNIT)
S = 'upstream-hmm-tests'

# log name -> (suite counts {suite: (passed, failed, skipped)},
#              guest problems, the failing tests' names, in order)
CASES = {
    'clean': ({S: (58, 0, 0)}, 0, []),
    'failed': ({S: (57, 1, 0)}, 0,
               ['hmm.hmm_device_private.anon_write_prot']),
    'skipped': ({S: (57, 0, 1)}, 0, []),
    'oops': ({S: (11, 47, 0)}, 1,
             ['hmm.hmm_device_private.migrate', '(after the last result)',
              '(end)']),
    'kasan': ({S: (57, 1, 0)}, 0,
              ['hmm.hmm_device_private.mixedmap']),
    'warning': ({S: (56, 2, 0)}, 0,
                ['hmm.hmm_device_private.open_close',
                 'hmm.hmm_device_coherent.open_close']),
    'lockdep': ({S: (58, 1, 0)}, 0, ['(between tests)']),
    'rcu-stall': ({S: (58, 0, 0)}, 1, []),
    'hang': ({S: (39, 19, 0)}, 1, ['(after the last result)', '(end)']),
    'cutoff': ({S: (30, 28, 0)}, 1, ['(after the last result)', '(end)']),
    'noplan': ({S: (0, 1, 0)}, 0, ['(plan)']),
    'missing-suite': ({S: (58, 0, 0), 'hmm-tests': (0, 1, 0)}, 0,
                      ['(start)']),
    'userspace-words': ({S: (58, 0, 0)}, 0, []),
    # A kernel message glued by the console onto a marker line: the
    # marker still counts (glued-marker), and a report in the message
    # still fails the suite it ends (glued-report).
    'glued-marker': ({S: (58, 0, 0)}, 0, []),
    'glued-report': ({S: (58, 1, 0)}, 0, ['(between tests)']),
    # The guest stopped the suite at its time limit (harness/suites).
    'limit': ({S: (40, 18, 0)}, 0, ['(after the last result)', '(limit)']),
    # A real KUnit run (suite kunit, from debugfs) with one parameter of a
    # parameterised case failing: leaves are named suite.case.param.
    'kunit-failed': ({'kunit': (27, 1, 0)}, 0,
                     ['hmm_range_fault.hmm_kunit_bad_range_einval.'
                      'unaligned_start']),
    # Suite dma (boot mode dma) with an IOMMU fault while a test ran that
    # passed by its own checks: the report fails it.
    'dmar': ({'dma': (8, 1, 0)}, 0, ['dma.invalidation_remaps']),
    # The debug kernel's leak checks: sections of one name add up; the
    # guest judges the objects of its own scan (kmemleak-known: only
    # upstream's driver's known leak, which passes), but kmemleak's line
    # anywhere else is a report (kmemleak-elsewhere: in a suite).
    'kmemleak-clean': ({S: (58, 0, 0), 'kmemleak': (2, 0, 0)}, 0, []),
    'kmemleak-leak': ({S: (58, 0, 0), 'kmemleak': (1, 1, 0)}, 0, [S]),
    'kmemleak-known': ({S: (58, 0, 0), 'kmemleak': (2, 0, 0)}, 0, []),
    'kmemleak-elsewhere': ({S: (57, 1, 0), 'kmemleak': (2, 0, 0)}, 0,
                           ['hmm.hmm_device_private.open_close']),
}


def parse_log(name):
    log = os.path.join(HERE, 'logs', name + '.log')
    status = os.path.join(HERE, 'logs', name + '.status')
    with tempfile.TemporaryDirectory() as out:
        return results.parse(log, out, KUNIT, status)


class ParseRecordedLogs(unittest.TestCase):
    """Each recorded log gets the counts, problems and failures expected."""

    def check(self, name):
        counts, problems, failing = CASES[name]
        res = parse_log(name)
        got = {s['suite']: (s['passed'], s['failed'], s['skipped'])
               for s in res['suites']}
        self.assertEqual(got, counts)
        self.assertEqual(len(res['problems']), problems, res['problems'])
        names = [f['test'] for s in res['suites'] for f in s['failures']]
        self.assertEqual(names, failing)
        for s in res['suites']:
            for f in s['failures']:
                self.assertIn('.log', f['where'])


def _make_case(name):
    def test(self):
        self.check(name)
    test.__doc__ = 'the %s log' % name
    return test


for _name in CASES:
    setattr(ParseRecordedLogs, 'test_' + _name.replace('-', '_'),
            _make_case(_name))


class HangPointsAtVcpus(unittest.TestCase):
    """A guest killed at its time limit names the vCPU dump boot.sh took."""

    def test_vcpus_named(self):
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, 'console.log')
            status = os.path.join(d, 'boot.status')
            with open(os.path.join(HERE, 'logs', 'hang.log')) as f, \
                    open(log, 'w') as g:
                g.write(f.read())
            with open(os.path.join(HERE, 'logs', 'hang.status')) as f, \
                    open(status, 'w') as g:
                g.write(f.read())
            res = results.parse(log, os.path.join(d, 'out'), KUNIT, status)
            self.assertNotIn('vCPUs', res['problems'][0]['why'])
            with open(os.path.join(d, 'vcpus.txt'), 'w') as f:
                f.write('sample 1:\n  CPU#0 rip=... cpl=0 if=1\n')
            res = results.parse(log, os.path.join(d, 'out'), KUNIT, status)
            self.assertIn('where its vCPUs were: ' +
                          os.path.join(d, 'vcpus.txt'),
                          res['problems'][0]['why'])


class ReportKinds(unittest.TestCase):
    """Each checker of the debug kernel is named by the first line it prints."""

    LINES = [
        ('KASAN', 'BUG: KASAN: slab-use-after-free in dmirror_fops_release'
                  '+0x40/0x90 [test_hmm]'),
        ('KFENCE', 'BUG: KFENCE: use-after-free read in hmm_range_fault'
                   '+0x1a/0x60'),
        ('lockdep', 'WARNING: possible circular locking dependency '
                    'detected'),
        ('kmemleak', 'kmemleak: 3 new suspected memory leaks (see '
                     '/sys/kernel/debug/kmemleak)'),
        ('kmemleak', 'kmemleak: Kernel memory leak detector disabled'),
        ('kmemleak', 'kmemleak: Cannot allocate a kmemleak_object '
                     'structure'),
        ('DEBUG_VM', 'page dumped because: VM_BUG_ON_FOLIO('
                     'folio_ref_count(folio) != 1)'),
        ('page_table_check', 'kernel BUG at mm/page_table_check.c:87!'),
        ('debugobjects', 'ODEBUG: free active (active state 0) object: '
                         '00000000a1b2c3d4 object type: work_struct hint: '
                         'dmirror_work+0x0/0x30 [test_hmm]'),
        ('debugobjects', 'ODEBUG: Out of memory. ODEBUG disabled'),
        ('BUG', 'BUG: sleeping function called from invalid context at '
                'mm/migrate_device.c:120'),
        ('BUG', 'watchdog: BUG: soft lockup - CPU#1 stuck for 22s! '
                '[hmm-tests:201]'),
        ('BUG', 'BUG: Bad rss-counter state mm:000000004c0fb7d4 '
                'type:MM_ANONPAGES val:1'),
        ('hung task', 'INFO: task hmm-tests:201 blocked for more than 120 '
                      'seconds.'),
        ('WARNING', 'WARNING: CPU: 1 PID: 201 at mm/memremap.c:512 '
                    'free_zone_device_folio+0x1c/0x40'),
        ('IOMMU fault', 'DMAR: DRHD: handling fault status reg 2'),
        ('IOMMU fault', 'DMAR: [DMA Read NO_PASID] Request device '
                        '[00:03.0] fault addr 0xffffe000 [fault reason '
                        '0x06] PTE Read access is not set'),
        ('IOMMU fault', 'DMAR: [DMA Write NO_PASID] Request device '
                        '[00:03.0] fault addr 0x7000 [fault reason 0x05] '
                        'PTE Write access is not set'),
        ('IOMMU fault', 'AMD-Vi: Event logged [IO_PAGE_FAULT '
                        'device=0000:00:03.0 domain=0x0002 '
                        'address=0xfffff000 flags=0x0000]'),
        (None, 'DMAR: IOMMU enabled'),
        (None, 'DMAR: Intel(R) Virtualization Technology for Directed I/O'),
        (None, 'kmemleak: Kernel memory leak detector initialized (mem '
               'pool available: 37530)'),
        (None, 'ODEBUG: selftest passed'),
    ]

    def test_kinds(self):
        for kind, text in self.LINES:
            with self.subTest(text=text):
                self.assertEqual(results.kernel_report(
                    '[   12.345678] ' + text), kind)
                # A test program printing the same words is not a report.
                self.assertIsNone(results.kernel_report(text))


class Report(unittest.TestCase):
    """The summary's totals, closing line and exit status."""

    def run_report(self, *names):
        """Report the logs NAMES, each "log" or "log:flavour:mode"."""
        with tempfile.TemporaryDirectory() as out:
            paths = []
            for i, spec in enumerate(names):
                n, flavour, mode = (spec.split(':') + ['ours', ''])[:3]
                res = parse_log(n)
                res['flavour'] = flavour
                res['mode'] = mode
                path = os.path.join(out, '%d-%s.json' % (i, n))
                with open(path, 'w') as f:
                    json.dump(res, f)
                paths.append(path)
            summary = os.path.join(out, 'summary.tsv')
            text = io.StringIO()
            with contextlib.redirect_stdout(text):
                rc = results.report(paths, summary)
            with open(summary) as f:
                rows = f.read().splitlines()
        return rc, text.getvalue().splitlines(), rows

    def test_clean_run_passes(self):
        rc, out, rows = self.run_report('clean')
        self.assertEqual(rc, 0)
        self.assertEqual(out[-1], '58 passed, 0 failed')
        self.assertEqual(rows, ['suite\tpassed\tfailed\tskipped',
                                S + '\t58\t0\t0'])

    def test_skip_fails_the_run(self):
        rc, out, _ = self.run_report('skipped')
        self.assertEqual(rc, 1)
        self.assertEqual(out[-1], '57 passed, 0 failed, 1 skipped')
        self.assertTrue(any('anon_write_huge: skipped' in l for l in out))

    def test_failure_names_suite_test_and_log(self):
        rc, out, _ = self.run_report('failed')
        self.assertEqual(rc, 1)
        fail = [l for l in out if l.startswith('FAIL ')]
        self.assertEqual(len(fail), 1)
        self.assertIn(S + ': hmm.hmm_device_private.anon_write_prot', fail[0])
        self.assertIn('failed.log:', fail[0])

    def test_guest_problem_is_a_failure(self):
        rc, out, rows = self.run_report('rcu-stall')
        self.assertEqual(rc, 1)
        self.assertEqual(out[-1], '58 passed, 1 failed')
        self.assertIn('guest\t0\t1\t0', rows)
        self.assertTrue(any('RCU stall' in l for l in out))

    def test_flavours_add_up(self):
        rc, out, _ = self.run_report('clean', 'failed')
        self.assertEqual(rc, 1)
        self.assertEqual(out[-1], '115 passed, 1 failed')

    def test_boot_modes_prefix_their_rows(self):
        rc, out, rows = self.run_report('clean', 'clean::thp-always',
                                        'clean:upstream:',
                                        'failed:upstream:thp-always')
        self.assertEqual(rc, 1)
        self.assertEqual(rows, ['suite\tpassed\tfailed\tskipped',
                                S + '\t58\t0\t0',
                                'thp-always/' + S + '\t58\t0\t0',
                                'upstream/' + S + '\t58\t0\t0',
                                'upstream/thp-always/' + S + '\t57\t1\t0'])
        fail = [l for l in out if l.startswith('FAIL ')]
        self.assertEqual(len(fail), 1)
        self.assertTrue(fail[0].startswith('FAIL upstream/thp-always/' + S +
                                           ': hmm.hmm_device_private.'
                                           'anon_write_prot'), fail[0])
        self.assertEqual(out[-1], '231 passed, 1 failed')


if __name__ == '__main__':
    unittest.main()
