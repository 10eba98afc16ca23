#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Instructions per function, per figure of `make bench INSNS=1`.

Usage: insns-report.py OUT FLAVOUR:SYSTEM_MAP:CONSOLE:COUNTS ...

For each flavour: the kernel's System.map, the guest console of its boot
(the HMM-BENCH lines name the figures in order, the HMM-KSYM lines give the
modules' functions) and the counts harness/qemu-plugin/insns.c wrote (one
window per figure, in the same order). Each block's instructions go to the
function its start address falls in (a block never spans two functions
unless one falls through into the next, which the kernel's do not).

OUT gets, per figure (driver, figure, backing, size), the instructions of
one repetition in total and per function, the flavours side by side and
the functions sorted by the largest difference first; with one flavour,
by the most instructions first.
"""
import bisect
import os
import sys

from vcpus import load_map      # System.map's text symbols, sorted

USER_END = 0x0000800000000000   # below: user space
# Functions listed per figure: INSNS_TOP, 0 for all of them.
TOP = int(os.environ.get('INSNS_TOP', '40')) or None


def read_console(path):
    """The figures in window order, and each one's module symbols."""
    figures = []
    mods = {}
    with open(path, errors='replace') as f:
        for line in f:
            parts = line.split()
            if 'HMM-KSYM' in parts:
                p = parts[parts.index('HMM-KSYM'):]
                if len(p) == 5:
                    mods.setdefault(p[1], []).append(
                        (int(p[2], 16), '%s [%s]' % (p[3], p[4])))
            elif 'HMM-BENCH' in parts:
                p = parts[parts.index('HMM-BENCH'):]
                if len(p) == 9:
                    figures.append(((p[1], p[2], p[3], int(p[4])), int(p[5])))
    for k in mods:
        mods[k].sort()
    return figures, mods


def read_counts(path):
    """One dict per window: block start address -> instructions run."""
    windows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts[0] == 'window':
                windows.append({})
            elif len(parts) == 3:
                a = int(parts[0], 16)
                windows[-1][a] = windows[-1].get(a, 0) + int(parts[2])
    return windows


def owner(addr, kmap, modmap):
    """The function at @addr."""
    if addr < USER_END:
        return '[user]'
    for addrs, names in (modmap, kmap):
        i = bisect.bisect_right(addrs, addr) - 1
        # Kernel text and modules are far apart: no function is this long.
        if i >= 0 and addr - addrs[i] < 0x10000:
            return names[i]
    return '[?]'


def profile(spec):
    """Per figure: {function: instructions per repetition}."""
    name, smap, console, counts = spec.split(':')
    kmap = load_map(smap)
    figures, mods = read_console(console)
    windows = read_counts(counts)
    if len(windows) != len(figures):
        sys.exit('%s: %d windows but %d figures in %s' %
                 (name, len(windows), len(figures), console))
    out = {}
    for (fig, reps), win in zip(figures, windows):
        m = mods.get(fig[0], [])
        modmap = ([a for a, _ in m], [n for _, n in m])
        funcs = {}
        for addr, n in win.items():
            fn = owner(addr, kmap, modmap)
            funcs[fn] = funcs.get(fn, 0) + n
        out[fig] = {fn: n / reps for fn, n in funcs.items()}
    return name, out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    profiles = [profile(s) for s in sys.argv[2:]]
    names = [n for n, _ in profiles]
    figs = []
    for _, p in profiles:
        for fig in p:
            if fig not in figs:
                figs.append(fig)
    lines = []
    for fig in figs:
        per = [p.get(fig, {}) for _, p in profiles]
        totals = [sum(x.values()) for x in per]
        lines.append('== %s %s %s %d KiB: instructions per repetition' %
                     (fig[0], fig[1], fig[2], fig[3] >> 10))
        lines.append('%-44s' % 'total' +
                     ''.join('%14.0f' % t for t in totals) +
                     ('%14.0f' % (totals[1] - totals[0])
                      if len(per) == 2 else ''))
        lines.append('%-44s' % 'function' +
                     ''.join('%14s' % n for n in names) +
                     ('%14s' % 'difference' if len(per) == 2 else ''))
        fns = set()
        for x in per:
            fns |= set(x)
        if len(per) == 2:
            order = sorted(fns, key=lambda f: -abs(per[1].get(f, 0) -
                                                    per[0].get(f, 0)))
        else:
            order = sorted(fns, key=lambda f: -per[0].get(f, 0))
        for fn in order[:TOP]:
            vals = [x.get(fn, 0) for x in per]
            lines.append('%-44s' % fn[:44] +
                         ''.join('%14.0f' % v for v in vals) +
                         ('%14.0f' % (vals[1] - vals[0])
                          if len(per) == 2 else ''))
        lines.append('')
    with open(sys.argv[1], 'w') as f:
        f.write('\n'.join(lines))


if __name__ == '__main__':
    main()
