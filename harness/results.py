#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Stages "parse" and "report": from a guest's console log to a verdict.

parse  CONSOLE OUTDIR
    The guest prints "HMM-HARNESS: suites A B ...", then each suite's output
    between "HMM-HARNESS: begin NAME" and "HMM-HARNESS: end NAME rc=N"
    (with "HMM-HARNESS: limit NAME SECONDS" before the end when the guest
    stopped the suite at its time limit), and "HMM-HARNESS: done" before it
    powers off. Each suite's section, less the
    kernel's own (time-stamped) lines, goes through the kernel's KTAP parser
    (tools/testing/kunit/kunit.py parse --json); this script adds what that
    parser cannot know from one section:
      - a suite that printed no plan, or stopped before its plan's end;
      - a suite that never started, a guest that never said "done"
        (hang or crash), and whether the host's timeout killed it;
      - kernel reports anywhere in the console (oops, BUG, WARNING, KASAN,
        KFENCE, lockdep, RCU stall, hung task, kmemleak, DEBUG_VM's page
        dumps, page_table_check, debugobjects, IOMMU faults): each fails
        the test that was running when it appeared, or the boot if none
        was.
    Sections of one name (suite kmemleak: one per check, after each suite)
    add up to one suite. In a kmemleak section, kmemleak's own line after
    the scan the check asked for is the guest's to judge: it lists every
    object, and passes only a leak known to be upstream's.
    Writes OUTDIR/results.json and prints one line per suite; the verdict
    is the report's, so it exits 0 once the results are written.

scan CONSOLE
    Lists the kernel reports in a console log (`make run` uses it).

report [--summary FILE] RESULTS.json...
    Adds up results (several flavours and boot modes, the parser's own
    tests), writes summary.tsv (suite, passed, failed, skipped; a row of
    flavour upstream reads upstream/SUITE, one of a boot mode that is not
    the default MODE/SUITE), names every failure with
    its suite, test and log, and ends with "N passed, N failed[, N skipped]".
    Exits 1 when anything failed or was skipped.

Written here rather than taken from kunit.py alone because kunit.py parses
one KTAP stream and knows nothing of suites, timeouts or kernel reports.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

MARK = 'HMM-HARNESS: '
KERNEL_LINE = re.compile(r'^\[\s*\d+\.\d+\]')
# A kernel message the console printed on the same line, after a marker.
KERNEL_TAIL = re.compile(r'\[\s*\d+\.\d+\]')
PLAN = re.compile(r'^1\.\.(\d+)')
RUNNING = re.compile(r'^#\s+RUN\s+(\S+)')
RESULT = re.compile(r'^(?:ok|not ok) \d+')

# Kernel reports that fail a run. Matched only on time-stamped kernel lines,
# so a test that prints one of these words cannot trip them.
REPORTS = [
    ('KASAN', re.compile(r'BUG: KASAN:')),
    ('KFENCE', re.compile(r'BUG: KFENCE:')),
    ('UBSAN', re.compile(r'UBSAN:')),
    ('lockdep', re.compile(r'(possible (circular|recursive) locking|'
                           r'inconsistent lock state|suspicious RCU usage|'
                           r'lock held when returning|'
                           r'held lock freed|bad unlock balance)')),
    ('RCU stall', re.compile(r'rcu: INFO: \S+ (self-)?detected stall|'
                             r'rcu_\w+ detected stalls')),
    ('hung task', re.compile(r'INFO: task .* blocked for more than')),
    # A leak, or kmemleak turning itself off (every later check would
    # pass without looking).
    ('kmemleak', re.compile(r'kmemleak: \d+ new suspected memory leaks|'
                            r'unreferenced object 0x|'
                            r'kmemleak: Kernel memory leak detector disabled|'
                            r'kmemleak: Cannot allocate')),
    ('oops', re.compile(r'Oops:|general protection fault|'
                        r'Kernel panic - not syncing')),
    # DEBUG_VM's dump_page() (VM_BUG_ON_PAGE, VM_WARN_ON_*_PAGE, bad page
    # state); the BUG or WARNING it precedes fails the test anyway, but the
    # first line of an incident names it.
    ('DEBUG_VM', re.compile(r'page dumped because:')),
    ('page_table_check', re.compile(r'kernel BUG at mm/page_table_check\.c|'
                                    r'page_table_check: ')),
    # debugobjects (ODEBUG): an active timer, work or RCU head freed or
    # reused, or the checker out of memory and off.
    ('debugobjects', re.compile(r'ODEBUG: (?!selftest passed)')),
    # An IOMMU refused a device's DMA (suite dma: a DMA address the HMM
    # helpers got wrong, or one used after its unmap). Intel's DMAR prints
    # the fault, or the status line when it prints no more (ratelimited);
    # AMD's IOMMU logs an IO_PAGE_FAULT event.
    ('IOMMU fault', re.compile(r'DMAR: (DRHD: handling fault status|'
                               r'\[(DMA Read|DMA Write|INTR-REMAP)'
                               r'[^\]]*\] Request device)|'
                               r'AMD-Vi: Event logged \[IO_PAGE_FAULT')),
    ('BUG', re.compile(r'(?<!ODE)BUG:|kernel BUG at|Bad page (state|map)')),
    ('WARNING', re.compile(r'WARNING:')),
]

# What kmemleak prints after a scan that found something.
LEAK_SCAN = re.compile(r'kmemleak: \d+ new suspected memory leaks')

DEFAULT_KUNIT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    'build', 'base', 'linux-source-6.12', 'tools', 'testing', 'kunit',
    'kunit.py')


def kernel_report(line):
    """The kind of kernel report LINE starts, or None."""
    if not KERNEL_LINE.match(line):
        return None
    for kind, pattern in REPORTS:
        if pattern.search(line):
            return kind
    return None


def ktap_cases(ktap_lines, kunit_py):
    """Run kunit.py parse over KTAP lines; return [(name, status)] leaves."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, 'suite.ktap')
        out = os.path.join(tmp, 'suite.json')
        with open(src, 'w') as f:
            f.write('\n'.join(ktap_lines) + '\n')
        subprocess.run([sys.executable, kunit_py, 'parse', '--json=' + out,
                        src], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        if not os.path.exists(out):
            return []
        with open(out) as f:
            group = json.load(f)

    cases = []

    # Nested groups (KUnit suites, parameterised cases) qualify their
    # leaves: suite.case.param. A flat kselftest's names stay as they are.
    def walk(g, prefix):
        cases.extend((prefix + c['name'], c['status']) for c in g['test_cases'])
        for sub in g['sub_groups']:
            walk(sub, prefix + sub['name'] + '.')
    walk(group, '')
    return cases


class Section:
    """One suite's stretch of the console."""

    def __init__(self, name, start):
        self.name = name
        self.start = start          # 1-based line of the begin marker
        self.lines = []             # (line number, text)
        self.rc = None              # None: no end marker
        self.limit = None           # seconds, when the guest stopped it
        self.reports = []           # (line number, kind, text, test)


def split_console(lines):
    """Return (expected suites, sections, boot reports, done)."""
    expected, sections, boot_reports = None, [], []
    current, running, done = None, None, False
    for no, line in enumerate(lines, 1):
        if line.startswith(MARK):
            # The serial console may glue a kernel message onto the
            # marker: the marker's words end where its timestamp starts,
            # and the message is judged like any other.
            body, tail = line[len(MARK):], ''
            m = KERNEL_TAIL.search(body)
            if m:
                body, tail = body[:m.start()], body[m.start():]
            kind = kernel_report(tail) if tail else None
            if kind:
                entry = (no, kind, tail.strip(), running)
                (current.reports if current else boot_reports).append(entry)
            word = body.split()
            if word[:1] == ['suites']:
                expected = word[1:]
            elif word[:1] == ['begin'] and len(word) > 1:
                current, running = Section(word[1], no), None
                sections.append(current)
            elif word[:1] == ['end'] and current:
                rc = word[-1].partition('rc=')[2]
                current.rc = int(rc) if rc.isdigit() else -1
                current = None
            elif word[:1] == ['limit'] and current and len(word) > 2:
                current.limit = word[2]
            elif word[:1] == ['done']:
                done = True
            continue
        kind = kernel_report(line)
        if kind and current and current.name == 'kmemleak' and \
                LEAK_SCAN.search(line):
            # The scan the check itself asked for: the guest lists every
            # object and judges them (a known upstream leak passes).
            continue
        if kind:
            entry = (no, kind, line.strip(), running)
            (current.reports if current else boot_reports).append(entry)
            continue
        if current is None or KERNEL_LINE.match(line):
            continue
        current.lines.append((no, line))
        text = line.strip()
        m = RUNNING.match(text)
        if m:
            running = m.group(1)
        elif RESULT.match(text):
            running = None
    return expected, sections, boot_reports, done


def parse_section(sec, kunit_py, log):
    """Counts and failures of one suite.

    kunit.py pads a stream that stops early with unnamed placeholders; those,
    and any shortfall against the plan, count as tests that never reported.
    A kernel report fails the test that was running (which, when the stream
    stopped there, is one of the never-reported ones); several report lines
    in one test are one incident, named by the first.
    """
    text = [t for _, t in sec.lines]
    plan = None
    for t in text:
        m = PLAN.match(t)
        if m:
            plan = int(m.group(1))
            break
    cases = ktap_cases(text, kunit_py) if plan is not None else []
    named = [[n, st] for n, st in cases if n]
    missing = max((plan or 0) - len(named), 0)
    where = '%s:%d' % (log, sec.start)
    failures = [{'test': n, 'why': 'failed' if st == 'FAIL' else 'crashed',
                 'where': where} for n, st in named if st in ('FAIL', 'ERROR')]

    seen = set()
    for no, kind, line, test in sec.reports:
        name = test or '(between tests)'
        if name in seen:
            continue
        seen.add(name)
        failures.append({'test': name, 'why': 'kernel %s: %s' % (kind, line),
                         'where': '%s:%d' % (log, no)})
        case = next((c for c in named if c[0] == name), None)
        if case:
            case[1] = 'FAIL' if case[1] in ('PASS', 'SKIP') else case[1]
            continue
        if test and missing:
            missing -= 1
        named.append([name, 'FAIL'])

    passed = sum(1 for _, st in named if st == 'PASS')
    skipped_names = [n for n, st in named if st == 'SKIP']
    failed = len(named) - passed - len(skipped_names) + missing
    if plan is None:
        failed += 1
        failures.append({'test': '(plan)', 'why': 'the suite printed no '
                         'KTAP plan', 'where': where})
    elif missing:
        failures.append({'test': '(after the last result)',
                         'why': '%d of %d tests never reported' % (missing,
                                                                   plan),
                         'where': where})
    if sec.limit is not None:
        failures.append({'test': '(limit)', 'why': 'stopped at its time '
                         'limit of %s s (harness/suites)' % sec.limit,
                         'where': where})
        failed = max(failed, 1)
    if sec.rc is None:
        failures.append({'test': '(end)', 'why': 'the suite never finished',
                         'where': where})
        failed = max(failed, 1)
    elif sec.rc != 0 and failed == 0:
        failed = 1
        failures.append({'test': '(exit)', 'why': 'exited with status %d'
                         % sec.rc, 'where': where})
    return {'suite': sec.name, 'plan': plan, 'passed': passed,
            'failed': failed, 'skipped': len(skipped_names),
            'skipped_tests': skipped_names, 'failures': failures}


def merge_suites(suites):
    """Suites of one name as one, in the order each name first appears."""
    merged = {}
    for s in suites:
        m = merged.get(s['suite'])
        if m is None:
            merged[s['suite']] = dict(s, skipped_tests=list(s['skipped_tests']),
                                      failures=list(s['failures']))
            continue
        if s['plan'] is not None:
            m['plan'] = (m['plan'] or 0) + s['plan']
        for k in ('passed', 'failed', 'skipped'):
            m[k] += s[k]
        m['skipped_tests'] += s['skipped_tests']
        m['failures'] += s['failures']
    return list(merged.values())


def parse(console, outdir, kunit_py, status_file=None, flavour='', mode=''):
    with open(console, errors='replace') as f:
        lines = [l.rstrip('\r\n') for l in f]
    expected, sections, boot_reports, done = split_console(lines)
    status = ''
    if status_file and os.path.exists(status_file):
        with open(status_file) as f:
            status = f.read().strip()
    suites = merge_suites([parse_section(s, kunit_py, console)
                           for s in sections])
    seen = {s['suite'] for s in suites}
    for name in expected or []:
        if name not in seen:
            suites.append({'suite': name, 'plan': None, 'passed': 0,
                           'failed': 1, 'skipped': 0, 'skipped_tests': [],
                           'failures': [{'test': '(start)',
                                         'why': 'the suite never started',
                                         'where': console}]})
    problems = []
    for no, kind, line, _ in boot_reports:
        problems.append({'test': '(boot)', 'why': 'kernel %s: %s'
                         % (kind, line), 'where': '%s:%d' % (console, no)})
    if expected is None and sections == []:
        problems.append({'test': '(boot)', 'why': 'the guest never '
                         'reached its suites', 'where': console})
    if not done:
        why = 'the guest did not finish'
        if status.startswith('timeout'):
            why += ' within %ss (hang?)' % status.split()[-1]
            vcpus = os.path.join(os.path.dirname(console), 'vcpus.txt')
            if os.path.exists(vcpus) and os.path.getsize(vcpus):
                why += '; where its vCPUs were: %s' % vcpus
        else:
            why += ' (crash or power-off; boot said "%s")' % (status or
                                                              'nothing')
        problems.append({'test': '(guest)', 'why': why, 'where': console})
    result = {'flavour': flavour, 'mode': mode, 'console': console,
              'done': done,
              'status': status, 'suites': suites, 'problems': problems}
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, 'results.json'), 'w') as f:
        json.dump(result, f, indent=2)
    return result


def scan(console):
    """Print the kernel reports in a console log; return how many."""
    with open(console, errors='replace') as f:
        lines = [l.rstrip('\r\n') for l in f]
    _, sections, boot_reports, _ = split_console(lines)
    reports = boot_reports + [r for s in sections for r in s.reports]
    for no, kind, line, _ in sorted(reports):
        print('kernel %s: %s (log: %s:%d)' % (kind, line, console, no))
    return len(reports)


def tag(flavour, suite, mode=''):
    """A summary row's name: flavour (unless ours), boot mode (unless the
    default one), suite, joined by slashes."""
    parts = [p for p in (flavour if flavour not in ('', 'ours') else '',
                         mode, suite) if p]
    return '/'.join(parts)


def report(paths, summary):
    rows, failures = [], []
    for path in paths:
        with open(path) as f:
            res = json.load(f)
        flavour = res.get('flavour', '')
        mode = res.get('mode', '')
        for s in res['suites']:
            name = tag(flavour, s['suite'], mode)
            rows.append((name, s['passed'], s['failed'], s['skipped']))
            failures += [(name, x) for x in s['failures']]
            failures += [(name, {'test': t, 'why': 'skipped',
                                 'where': res['console']})
                         for t in s['skipped_tests']]
        if res['problems']:
            name = tag(flavour, 'guest', mode)
            rows.append((name, 0, len(res['problems']), 0))
            failures += [(name, x) for x in res['problems']]
    if summary:
        os.makedirs(os.path.dirname(os.path.abspath(summary)), exist_ok=True)
        with open(summary, 'w') as f:
            f.write('suite\tpassed\tfailed\tskipped\n')
            for r in rows:
                f.write('%s\t%d\t%d\t%d\n' % r)
    width = max([len(r[0]) for r in rows] + [5])
    print('%-*s %7s %7s %7s' % (width, 'suite', 'passed', 'failed',
                                'skipped'))
    for r in rows:
        print('%-*s %7d %7d %7d' % ((width,) + r))
    for name, x in failures:
        print('FAIL %s: %s: %s (log: %s)' % (name, x['test'], x['why'],
                                             x['where']))
    passed = sum(r[1] for r in rows)
    failed = sum(r[2] for r in rows)
    skipped = sum(r[3] for r in rows)
    line = '%d passed, %d failed' % (passed, failed)
    if skipped:
        line += ', %d skipped' % skipped
    print(line)
    return 1 if failed or skipped or not rows else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('parse')
    p.add_argument('console')
    p.add_argument('outdir')
    p.add_argument('--flavour', default='')
    p.add_argument('--mode', default='',
                   help='boot mode, for the summary rows (empty: default)')
    p.add_argument('--status', help='boot.status written by boot.sh')
    p.add_argument('--kunit', default=DEFAULT_KUNIT,
                   help='path of the base tree\'s kunit.py')
    c = sub.add_parser('scan', help='list kernel reports in a console log')
    c.add_argument('console')
    r = sub.add_parser('report')
    r.add_argument('results', nargs='+')
    r.add_argument('--summary')
    args = ap.parse_args()

    if args.cmd == 'report':
        sys.exit(report(args.results, args.summary))
    if args.cmd == 'scan':
        sys.exit(1 if scan(args.console) else 0)
    res = parse(args.console, args.outdir, args.kunit, args.status,
                args.flavour, args.mode)
    for s in res['suites']:
        print('parse       %-10s suite %s: %d passed, %d failed, %d skipped'
              % ('[%s]' % (args.flavour or '-'),
                 tag('', s['suite'], args.mode), s['passed'], s['failed'],
                 s['skipped']))
    for x in res['problems']:
        print('parse       %-10s %s (%s)' % ('[%s]' % (args.flavour or '-'),
                                           x['why'], x['where']))
    # The verdict is the report's: parsing went through.
    sys.exit(0)


if __name__ == '__main__':
    main()
