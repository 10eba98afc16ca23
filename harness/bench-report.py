#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Summarise make bench: raw per-boot figures into a table, a TSV and a plot.

Input: build/bench/raw.tsv, one row per (flavour, round, driver, figure,
backing, size) with the median of that boot's repetitions. Three set-ups are
compared:

  upstream   flavour upstream, upstream's test_hmm       (the reference)
  ours       flavour ours, upstream's test_hmm           (only the core differs)
  ours+drv   flavour ours, our test_hmm                  (our whole stack)

For each set-up and figure the value is the median over boots, its spread
is (max - min) / median over boots, and the speed-up is upstream / ours
(above 1.0: ours is faster). memcpy is the same in every set-up; it is the
physical limit the other figures are read against: the table's last column
is the throughput of our whole stack (ours+drv) as a fraction of memcpy's
for the same bytes and page size.

Writes results.tsv and bench.png (gnuplot: time per 4 KiB page against
size, one panel per figure) into the output folder, and prints the table.
With events.tsv beside raw.tsv (the HMM-EVENTS lines of flavour ours's
boots), a second table says what each operation did in our whole stack:
pages collected and moved, 2 MiB folios moved whole or split, CPU faults
on device memory, pages that failed.
"""

import collections
import csv
import os
import statistics
import subprocess
import sys

SETUPS = [('upstream', ('upstream', 'upstream-driver')),
          ('ours', ('ours', 'upstream-driver')),
          ('ours+drv', ('ours', 'our-driver'))]
# The DMA boot (flavour ours in boot mode dma, test_hmm_dma on QEMU's edu
# behind the IOMMU): a table of its own, next to ours+drv's dev_read.
DMA_SETUP = ('ours+dma', ('dma', 'dma-driver'))
# Its figures, as the table names them: dev_read moves data by DMA there.
DMA_FIGURES = [('dma_map', 'dma_map'), ('dev_read', 'dma_read')]
FIGURE_ORDER = ['memcpy', 'to_dev', 'to_sys', 'cpu_fault', 'dev_read',
                'dev_read_cold', 'snapshot', 'gpu_fault', 'evict']
PAGE = 4096
# The figures that move the buffer's bytes (read against memcpy).
MOVERS = {'to_dev', 'to_sys', 'cpu_fault', 'dev_read', 'dev_read_cold',
          'gpu_fault', 'evict'}


def load(raw):
    """{(setup, figure, backing, bytes): [per-boot median ns]}"""
    by_key = {v: k for k, v in SETUPS + [DMA_SETUP]}
    data = collections.defaultdict(list)
    with open(raw) as f:
        for row in csv.DictReader(f, delimiter='\t'):
            setup = by_key.get((row['flavour'], row['driver']))
            if setup:
                key = (setup, row['figure'], row['backing'], int(row['bytes']))
                data[key].append(int(row['median_ns']))
    return data


def summary(values):
    """(median, spread as a fraction of it), or (None, None)."""
    if not values:
        return None, None
    med = statistics.median(values)
    return med, (max(values) - min(values)) / med if med else 0.0


def size_label(nbytes):
    return '%d MiB' % (nbytes >> 20) if nbytes >= 1 << 20 else '%d KiB' % (nbytes >> 10)


def fmt_time(ns):
    if ns is None:
        return '-'
    if ns >= 1e9:
        return '%.2f s' % (ns / 1e9)
    if ns >= 1e6:
        return '%.1f ms' % (ns / 1e6)
    return '%.0f us' % (ns / 1e3)


def main(raw, out):
    data = load(raw)
    if not data:
        print('bench-report: no figures in %s' % raw, file=sys.stderr)
        return 1
    keys = sorted({(fig, back, size) for (setup, fig, back, size) in data
                   if setup != DMA_SETUP[0]},
                  key=lambda k: (FIGURE_ORDER.index(k[0])
                                 if k[0] in FIGURE_ORDER else 99, k[1], k[2]))
    rows = []
    for fig, back, size in keys:
        row = {'figure': fig, 'backing': back, 'bytes': size,
               'boots': len(data.get(('upstream', fig, back, size), []))}
        for setup, _ in SETUPS:
            med, spread = summary(data.get((setup, fig, back, size), []))
            row[setup] = med
            row[setup + '_spread'] = spread
        for setup in ('ours', 'ours+drv'):
            row[setup + '_speedup'] = (row['upstream'] / row[setup]
                                       if row['upstream'] and row[setup]
                                       else None)
        rows.append(row)
    # memcpy of the same bytes: the same in every set-up (ours+drv's boots).
    memcpy = {(r['backing'], r['bytes']): r['ours+drv'] or r['upstream']
              for r in rows if r['figure'] == 'memcpy'}
    for r in rows:
        base = memcpy.get((r['backing'], r['bytes']))
        r['of_memcpy'] = (base / r['ours+drv']
                          if base and r['ours+drv'] and r['figure'] in MOVERS
                          else None)

    tsv = os.path.join(out, 'results.tsv')
    cols = ['figure', 'backing', 'bytes', 'boots', 'upstream_ns',
            'upstream_spread', 'ours_ns', 'ours_spread', 'ours_speedup',
            'ours+drv_ns', 'ours+drv_spread', 'ours+drv_speedup',
            'ours+drv_of_memcpy']
    with open(tsv, 'w') as f:
        f.write('\t'.join(cols) + '\n')
        for r in rows:
            vals = [r['figure'], r['backing'], r['bytes'], r['boots']]
            for setup in ('upstream', 'ours', 'ours+drv'):
                vals += ['%.0f' % r[setup] if r[setup] is not None else '',
                         '%.4f' % r[setup + '_spread']
                         if r[setup + '_spread'] is not None else '']
                if setup != 'upstream':
                    vals.append('%.4f' % r[setup + '_speedup']
                                if r[setup + '_speedup'] else '')
            vals.append('%.4f' % r['of_memcpy'] if r['of_memcpy'] else '')
            # upstream has no speed-up column: keep the header's order
            f.write('\t'.join(str(v) for v in vals) + '\n')

    def pct(x):
        return '-' if x is None else '%4.1f%%' % (100 * x)

    def speed(x):
        return '-' if x is None else '%.2fx' % x

    head = ('%-13s %-4s %8s | %10s %6s | %10s %6s %7s | %10s %6s %7s %7s'
            % ('figure', 'page', 'size', 'upstream', '+-', 'ours', '+-',
               'speedup', 'ours+drv', '+-', 'speedup', 'memcpy'))
    print(head)
    print('-' * len(head))
    for r in rows:
        print('%-13s %-4s %8s | %10s %6s | %10s %6s %7s | %10s %6s %7s %7s'
              % (r['figure'], r['backing'], size_label(r['bytes']),
                 fmt_time(r['upstream']), pct(r['upstream_spread']),
                 fmt_time(r['ours']), pct(r['ours_spread']),
                 speed(r['ours_speedup']),
                 fmt_time(r['ours+drv']), pct(r['ours+drv_spread']),
                 speed(r['ours+drv_speedup']), pct(r['of_memcpy'])))
    print('speedup = upstream time / ours (above 1.00x: ours is faster); '
          '+- = spread of the per-boot medians; memcpy = ours+drv '
          'throughput as a share of memcpy of the same bytes; %d boots '
          'per set-up' % max(r['boots'] for r in rows))
    dma_table(data, out)
    events_table(os.path.join(out, 'events.tsv'), keys)
    plot(rows, out)
    return 0


def dma_table(data, out):
    """The DMA boot's figures, dma_read next to ours+drv's dev_read."""
    dma = DMA_SETUP[0]
    keys = sorted({(fig, back, size) for (setup, fig, back, size) in data
                   if setup == dma})
    if not keys:
        return
    rows = []
    for fig, name in DMA_FIGURES:
        for back, size in sorted({(b, z) for f, b, z in keys if f == fig}):
            med, spread = summary(data.get((dma, fig, back, size), []))
            ref = None
            if fig == 'dev_read':
                ref, _ = summary(data.get(('ours+drv', fig, back, size), []))
            rows.append((name, back, size, med, spread, ref,
                         med / ref if med and ref else None))
    with open(os.path.join(out, 'dma.tsv'), 'w') as f:
        f.write('figure\tbacking\tbytes\tns\tspread\tdev_read_ns\tratio\n')
        for name, back, size, med, spread, ref, ratio in rows:
            f.write('%s\t%s\t%d\t%s\t%s\t%s\t%s\n'
                    % (name, back, size, '%.0f' % med if med else '',
                       '%.4f' % spread if spread is not None else '',
                       '%.0f' % ref if ref else '',
                       '%.4f' % ratio if ratio else ''))
    print()
    print('DMA through test_hmm_dma (QEMU edu behind the IOMMU; the '
          "thread's CPU time,")
    print("the device's fixed 100 ms per 2 KiB transfer left out):")
    head = ('%-13s %-4s %8s | %10s %6s | %10s %7s'
            % ('figure', 'page', 'size', 'ours+dma', '+-', 'dev_read',
               'ratio'))
    print(head)
    print('-' * len(head))
    for name, back, size, med, spread, ref, ratio in rows:
        print('%-13s %-4s %8s | %10s %6s | %10s %7s'
              % (name, back, size_label(size), fmt_time(med),
                 '-' if spread is None else '%4.1f%%' % (100 * spread),
                 fmt_time(ref), '-' if ratio is None else '%.2fx' % ratio))
    print('dev_read = ours+drv dev_read (memcpy by the dummy device) of the '
          'same buffer; ratio = dma_read / dev_read')


def events_table(path, keys):
    """What each figure's operation did: the core's events, ours+drv."""
    did = {}
    if not os.path.exists(path):
        return
    with open(path) as f:
        for row in csv.DictReader(f, delimiter='\t'):
            if (row['flavour'], row['driver']) != ('ours', 'our-driver'):
                continue
            ev = dict(w.split('=', 1) for w in row['events'].split())
            did.setdefault((row['figure'], row['backing'], int(row['bytes'])),
                           {k: int(v) for k, v in ev.items()})
    if not did:
        return

    def get(ev, *names):
        return sum(ev.get(n, 0) for n in names)

    head = ('%-13s %-4s %8s | %9s %9s %8s %6s %8s %8s %7s'
            % ('figure', 'page', 'size', 'collected', 'moved', '2M whole',
               'split', 'faults', 'failed', 'locked'))
    print()
    print('What one repetition of each operation did (flavour ours, our '
          'driver; /proc/vmstat, pages unless said):')
    print(head)
    print('-' * len(head))
    for key in keys:
        ev = did.get(key)
        if ev is None:
            continue
        print('%-13s %-4s %8s | %9d %9d %8d %6d %8d %8d %7d'
              % (key[0], key[1], size_label(key[2]),
                 get(ev, 'pgmigrate_device_collected'),
                 get(ev, 'pgmigrate_device_success'),
                 get(ev, 'thp_migration_device'),
                 get(ev, 'thp_migration_device_split'),
                 get(ev, 'device_private_fault'),
                 get(ev, 'pgmigrate_device_fail_pinned',
                     'pgmigrate_device_fail_refs',
                     'pgmigrate_device_fail_alloc',
                     'pgmigrate_device_fail_raced'),
                 get(ev, 'pgmigrate_device_fail_locked')))
    print('2M whole and split count folios; failed = pinned + refs + alloc '
          '+ raced')


def plot(rows, out):
    """bench.png: ns per 4 KiB page against size, a panel per figure.

    Every set-up of the table is a line (4 KiB and THP apart); the legend
    sits under each panel, off the lines. The terminal is not "enhanced",
    so titles print as written (an underscore is not a subscript).
    """
    pdir = os.path.join(out, 'plot')
    os.makedirs(pdir, exist_ok=True)
    figures = [f for f in FIGURE_ORDER if any(r['figure'] == f for r in rows)]
    series = [(s, b) for s, _ in SETUPS for b in ('4k', 'thp')]
    for fig in figures:
        for setup, back in series:
            with open(os.path.join(pdir, '%s-%s-%s.dat'
                                   % (fig, setup.replace('+', '-'), back)),
                      'w') as f:
                for r in rows:
                    if (r['figure'], r['backing']) == (fig, back) and r[setup]:
                        f.write('%g %g\n' % (r['bytes'] / 2**20,
                                             r[setup] / (r['bytes'] / PAGE)))
    cols = 4
    nrows = (len(figures) + cols - 1) // cols
    gp = ['set terminal png noenhanced size %d,%d'
          % (cols * 420, nrows * 420),
          'set output "%s"' % os.path.join(out, 'bench.png'),
          'set multiplot layout %d,%d title "HMM: time per 4 KiB page. '
          'upstream: upstream 6.12 core and test_hmm; ours: our core, '
          'upstream test_hmm; ours+drv: our core and test_hmm"'
          % (nrows, cols),
          'set logscale xy', 'set xlabel "size (MiB)"',
          'set ylabel "ns per page"',
          'set key outside below center font ",8"', 'set bmargin 8',
          'set grid']
    for fig in figures:
        plots = []
        for setup, back in series:
            dat = os.path.join(pdir, '%s-%s-%s.dat'
                               % (fig, setup.replace('+', '-'), back))
            plots.append('"%s" with linespoints title "%s %s"'
                         % (dat, setup, back))
        gp += ['set title "%s"' % fig, 'plot ' + ', '.join(plots)]
    gp.append('unset multiplot')
    script = os.path.join(pdir, 'bench.gp')
    with open(script, 'w') as f:
        f.write('\n'.join(gp) + '\n')
    res = subprocess.run(['gnuplot', script], capture_output=True, text=True)
    if res.returncode:
        print('bench-report: gnuplot failed: %s' % res.stderr.strip(),
              file=sys.stderr)


def stability(out, results):
    """The min and max of each speed-up over several runs' results.tsv."""
    ratios = collections.defaultdict(lambda: collections.defaultdict(list))
    order = []
    for path in results:
        with open(path) as f:
            for row in csv.DictReader(f, delimiter='\t'):
                key = (row['figure'], row['backing'], int(row['bytes']))
                if key not in ratios:
                    order.append(key)
                for setup in ('ours', 'ours+drv'):
                    if row[setup + '_speedup']:
                        ratios[key][setup].append(
                            float(row[setup + '_speedup']))
    head = ('%-13s %-4s %8s | %-21s | %-21s'
            % ('figure', 'page', 'size', 'ours speedup min-max',
               'ours+drv min-max'))
    lines = [head, '-' * len(head)]
    with open(out, 'w') as f:
        f.write('figure\tbacking\tbytes\truns\tours_min\tours_max\t'
                'ours+drv_min\tours+drv_max\n')
        for key in order:
            cells, spans = [], []
            for setup in ('ours', 'ours+drv'):
                v = ratios[key][setup]
                cells += ['%.4f' % min(v), '%.4f' % max(v)] if v else ['', '']
                spans.append('%.3fx - %.3fx' % (min(v), max(v)) if v else '-')
            f.write('\t'.join([key[0], key[1], str(key[2]),
                               str(len(ratios[key]['ours']))] + cells) + '\n')
            lines.append('%-13s %-4s %8s | %-21s | %-21s'
                         % (key[0], key[1], size_label(key[2]), spans[0],
                            spans[1]))
    print('\n'.join(lines))
    print('speed-ups over %d runs; %s' % (len(results), out))
    return 0


def profile(console, out):
    """profile.txt: the HMM-PROFILE lines of a boot, a table per figure."""
    timed, funcs = {}, collections.defaultdict(list)
    order = []
    with open(console) as f:
        for line in f:
            w = line.split()
            if len(w) == 9 and w[0] == 'HMM-BENCH':
                timed[tuple(w[1:5])] = int(w[6])
            elif len(w) == 8 and w[0] == 'HMM-PROFILE':
                key = tuple(w[1:5])
                if key not in funcs:
                    order.append(key)
                funcs[key].append((w[5], int(w[6]), float(w[7])))
    if not order:
        print('bench-report: no profile lines in %s' % console,
              file=sys.stderr)
        return 1
    text = ['Function profile of one repetition per figure (ftrace function '
            'profiler,', 'function_graph hooks: a function\'s time includes '
            'its callees and sleeps;', 'summed over CPUs; the hooks slow '
            'the traced functions down).', '']
    for key in order:
        label, fig, back, nbytes = key
        total = timed.get(key)
        text.append('%s, %s, %s %s: %s timed with the profiler on'
                    % (label, fig, back, size_label(int(nbytes)),
                       fmt_time(total)))
        text.append('  %-32s %8s %10s %8s %6s'
                    % ('function', 'hits', 'total', 'per hit', 'share'))
        for name, hits, us in funcs[key]:
            share = ('%5.1f%%' % (100 * us * 1e3 / total)) if total else '-'
            text.append('  %-32s %8d %10s %8s %6s'
                        % (name, hits, fmt_time(us * 1e3),
                           fmt_time(us * 1e3 / hits) if hits else '-',
                           share))
        text.append('')
    with open(out, 'w') as f:
        f.write('\n'.join(text))
    print('\n'.join(text))
    return 0


# Each TRACE_COST kind: the two kernels' column labels in trace-cost.txt
# (the second kernel's, then flavour ours') and what their ratio is.
TRACE_COST_KINDS = {
    '1': ('notrace', 'tracing',
          'time with the tracing configs / time without'),
    'hmm': ('hmm-off', 'tracing',
            'time with HMM\'s tracepoints / time with them compiled out'),
    'placebo': ('moved', 'ours',
                'time of flavour ours / time of the same code at other '
                'addresses (the noise floor)'),
}
# Figures the summary line leaves out: memcpy involves no HMM, and evict
# is dominated by the driver's 20 ms retry sleeps.
TRACE_COST_ASIDE = ('memcpy', 'evict')


def trace_cost(raw, out, kind='1'):
    """trace-cost.txt: flavour ours with the tracing configs (no event
    enabled) against a second kernel (flavour column notrace): the same
    tree without them, or with HMM's tracepoints compiled out, or the same
    code moved (TRACE_COST_KINDS); per figure and driver, the medians over
    boots and their ratio, and the ratio of the fastest repetitions. Under
    -icount a repetition only ever gets slower than the operation itself,
    by whatever else runs in its window (a timer, an RCU callback, a
    worker), so the fastest one is its cost with the least of that."""
    data = collections.defaultdict(list)
    fastest = {}
    with open(raw) as f:
        for row in csv.DictReader(f, delimiter='\t'):
            key = (row['driver'], row['figure'], row['backing'],
                   int(row['bytes']))
            data[(row['flavour'],) + key].append(int(row['median_ns']))
            k = (row['flavour'],) + key
            fastest[k] = min(fastest.get(k, int(row['min_ns'])),
                             int(row['min_ns']))
    keys = sorted({k[1:] for k in data if k[0] == 'ours'},
                  key=lambda k: (k[0], FIGURE_ORDER.index(k[1])
                                 if k[1] in FIGURE_ORDER else 99, k[2], k[3]))
    if not keys:
        print('bench-report: no figures in %s' % raw, file=sys.stderr)
        return 1
    (off_label, on_label, meaning) = TRACE_COST_KINDS[kind]
    head = ('%-15s %-13s %-4s %8s | %10s %6s | %10s %6s | %7s | %8s'
            % ('driver', 'figure', 'page', 'size', off_label, '+-',
               on_label, '+-', 'cost', 'fastest'))
    text = [head, '-' * len(head)]
    ratios = []
    fast_ratios = []
    for key in keys:
        (off, off_spread) = summary(data.get(('notrace',) + key, []))
        (on, on_spread) = summary(data.get(('ours',) + key, []))
        ratio = on / off if on and off else None
        fast_off = fastest.get(('notrace',) + key)
        fast_on = fastest.get(('ours',) + key)
        fast = fast_on / fast_off if fast_on and fast_off else None
        if ratio and key[1] not in TRACE_COST_ASIDE:
            ratios.append(ratio)
            if fast:
                fast_ratios.append(fast)
        text.append('%-15s %-13s %-4s %8s | %10s %6s | %10s %6s | %7s | %8s'
                    % (key[0], key[1], key[2], size_label(key[3]),
                       fmt_time(off), '-' if off_spread is None
                       else '%4.1f%%' % (100 * off_spread),
                       fmt_time(on), '-' if on_spread is None
                       else '%4.1f%%' % (100 * on_spread),
                       '-' if ratio is None else '%.4fx' % ratio,
                       '-' if fast is None else '%.4fx' % fast))
    text.append('cost = %s (1.0000x: nothing measurable), of the medians; '
                'fastest: of the fastest repetitions; no event enabled'
                % meaning)
    for (what, rs) in (('cost', ratios), ('fastest', fast_ratios)):
        if rs:
            text.append('%s over %d figures (%s aside): %.4fx to %.4fx, '
                        'geometric mean %.4fx'
                        % (what, len(rs), ' and '.join(TRACE_COST_ASIDE),
                           min(rs), max(rs),
                           statistics.geometric_mean(rs)))
    with open(out, 'w') as f:
        f.write('\n'.join(text) + '\n')
    print('\n'.join(text))
    return 0


if __name__ == '__main__':
    if len(sys.argv) >= 4 and sys.argv[1] == '--stability':
        sys.exit(stability(sys.argv[2], sys.argv[3:]))
    if len(sys.argv) == 4 and sys.argv[1] == '--profile':
        sys.exit(profile(sys.argv[2], sys.argv[3]))
    if len(sys.argv) in (4, 5) and sys.argv[1] == '--trace-cost':
        sys.exit(trace_cost(*sys.argv[2:]))
    if len(sys.argv) != 3:
        print('usage: bench-report.py RAW.tsv OUTDIR\n'
              '       bench-report.py --stability OUT.tsv RESULTS.tsv...\n'
              '       bench-report.py --profile CONSOLE.log OUT.txt\n'
              '       bench-report.py --trace-cost RAW.tsv OUT.txt '
              '[1|hmm|placebo]',
              file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
