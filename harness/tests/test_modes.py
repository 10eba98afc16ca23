# SPDX-License-Identifier: GPL-2.0
"""Boot modes (harness/modes) as a dimension of a run.

A table of two modes, the second with command-line words and a QEMU
device of its own: the boot stage puts each mode's words and arguments on
the guest's command line, keeps each mode's console in a folder of its
own, and the report prefixes the rows of every mode but the default.
"""

import os
import shlex
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.path.dirname(HERE)

MODES = '''\
# name        | kernel command-line words    | QEMU arguments
thp-madvise   | transparent_hugepage=madvise |
thp-always    | transparent_hugepage=always hmm.extra=1 | -device edu
'''


class BootModes(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.table = os.path.join(self.tmp.name, 'modes')
        with open(self.table, 'w') as f:
            f.write(MODES)
        self.env = dict(os.environ, MODES_TABLE=self.table,
                        BUILD=os.path.join(self.tmp.name, 'build'),
                        FLAVOUR='ours', DEBUG='0', DRY_RUN='1')
        for knob in ('TIMEOUT', 'MODES', 'ICOUNT'):
            self.env.pop(knob, None)

    def tearDown(self):
        self.tmp.cleanup()

    def bash(self, script, **env):
        return subprocess.run(
            ['bash', '-c', 'source "%s/common.sh"; %s' % (HARNESS, script)],
            env=dict(self.env, **env), capture_output=True, text=True)

    def boot(self, *args):
        out = subprocess.run([os.path.join(HARNESS, 'boot.sh')] + list(args),
                             env=self.env, capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = dict(l.split('=', 1) if '=' in l.split(':')[0] else
                     l.split(':', 1) for l in out.stdout.splitlines())
        return lines['out'], int(lines['timeout']), shlex.split(lines['qemu'])

    def test_the_first_mode_is_the_default(self):
        out = self.bash('mode_default; mode_names; mode_tag thp-madvise; '
                        'mode_tag thp-always')
        self.assertEqual(out.stdout.split(),
                         ['thp-madvise', 'thp-madvise', 'thp-always',
                          'thp-always'])

    def test_each_mode_boots_with_its_words_and_devices(self):
        out, _, qemu = self.boot('check')
        append = qemu[qemu.index('-append') + 1].split()
        self.assertIn('transparent_hugepage=madvise', append)
        self.assertIn('hmm.bootmode=thp-madvise', append)
        self.assertNotIn('edu', qemu)
        self.assertTrue(out.endswith('/build/ours/check'), out)

        out, _, qemu = self.boot('check', 'thp-always')
        append = qemu[qemu.index('-append') + 1].split()
        self.assertIn('transparent_hugepage=always', append)
        self.assertIn('hmm.extra=1', append)
        self.assertNotIn('transparent_hugepage=madvise', append)
        self.assertIn('hmm.bootmode=thp-always', append)
        # The mode's devices come before the machine's PCI devices (an
        # IOMMU must exist before the devices it translates for).
        edu = qemu.index('edu')
        self.assertEqual(qemu[edu - 1], '-device')
        self.assertLess(edu, [i for i, a in enumerate(qemu)
                              if a.startswith('nvme,')][0])
        self.assertTrue(out.endswith('/build/ours/check-thp-always'), out)

    def test_icount_checks_boot_one_vcpu(self):
        """QEMU 7.2's icount round robin starves a second vCPU."""
        def smp(mode, **env):
            self.env.update(env)
            _, _, qemu = self.boot(mode)
            return qemu[qemu.index('-smp') + 1]
        self.assertEqual(smp('check'), '2')
        self.assertEqual(smp('check', ICOUNT='1'), '1')
        self.assertEqual(smp('bench', ICOUNT='1'), '2')

    def test_a_mode_with_icount_boots_as_icount(self):
        """Its own -icount, one vCPU, and not a second -icount."""
        with open(self.table, 'a') as f:
            f.write('dma | intel_iommu=on | -device edu '
                    '-icount shift=0,sleep=off\n')
        for env in ({}, {'ICOUNT': '1'}):
            self.env.update(env)
            _, _, qemu = self.boot('check', 'dma')
            self.assertEqual(qemu.count('-icount'), 1)
            self.assertEqual(qemu[qemu.index('-icount') + 1],
                             'shift=0,sleep=off')
            self.assertEqual(qemu[qemu.index('-smp') + 1], '1')
            # A benchmark there too: idle=poll would count out the
            # device's waits instruction by instruction.
            _, _, qemu = self.boot('bench', 'dma')
            self.assertEqual(qemu.count('-icount'), 1)
            self.assertEqual(qemu[qemu.index('-smp') + 1], '1')
            self.assertNotIn('idle=poll',
                             qemu[qemu.index('-append') + 1].split())

    def test_a_mode_without_suites_is_not_run(self):
        fdir = os.path.join(self.env['BUILD'], 'ours')
        os.makedirs(fdir)
        script = ('for m in thp-madvise thp-always dma; do '
                  'mode_has_suites $m && echo $m; done')
        # Before the initramfs lists the suites, every mode counts.
        self.assertEqual(self.bash(script).stdout.split(),
                         ['thp-madvise', 'thp-always', 'dma'])
        with open(os.path.join(fdir, 'hmm-suites'), 'w') as f:
            f.write('hmm-tests\tthp-madvise,thp-always\t600\tx\ty\n'
                    'kunit\tthp-always\t300\t-\tz\n')
        self.assertEqual(self.bash(script).stdout.split(),
                         ['thp-madvise', 'thp-always'])
        with open(os.path.join(fdir, 'hmm-suites'), 'a') as f:
            f.write('any\t*\t300\t-\tz\n')
        self.assertEqual(self.bash(script).stdout.split(),
                         ['thp-madvise', 'thp-always', 'dma'])

    def test_unknown_mode_is_refused(self):
        out = subprocess.run([os.path.join(HARNESS, 'boot.sh'), 'check',
                              'thp-never'], env=self.env,
                             capture_output=True, text=True)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("no boot mode 'thp-never'", out.stderr)
        run = self.bash('run_modes', MODES='thp-always thp-never')
        self.assertNotEqual(run.returncode, 0)

    def test_a_run_covers_every_mode_or_those_named(self):
        self.assertEqual(self.bash('run_modes').stdout.split(),
                         ['thp-madvise', 'thp-always'])
        self.assertEqual(self.bash('run_modes',
                                   MODES='thp-always').stdout.split(),
                         ['thp-always'])

    def test_time_limit_adds_up_the_modes_suites(self):
        fdir = os.path.join(self.tmp.name, 'build', 'ours')
        os.makedirs(fdir)
        with open(os.path.join(fdir, 'hmm-suites'), 'w') as f:
            f.write('a\t*\t100\ttest_hmm.ko\t/bin/a\n'
                    'b\tthp-always\t50\t-\t/bin/b\n'
                    'c\tthp-madvise,other\t20\t-\t/bin/c\n')
        self.assertEqual(self.boot('check')[1], 300 + 100 + 20)
        self.assertEqual(self.boot('check', 'thp-always')[1], 300 + 100 + 50)


if __name__ == '__main__':
    unittest.main()
