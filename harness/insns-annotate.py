#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""One function's instructions in one figure of `make bench INSNS=...`,
block by block: each translation block the function ran, how often per
repetition, and its disassembly.

Usage: insns-annotate.py OUT LABEL OBJ FUNCTION DRIVER FIGURE BACKING

OUT is the bench's output folder (BENCH_OUT), LABEL a kernel of the run
(upstream, ours, hmmnotrace or notrace: OUT has insns-LABEL.counts and
boot-insns-LABEL/console.log), OBJ that kernel's build folder (for
example build/ours/obj: its vmlinux and System.map). FUNCTION is a kernel
function, or a module's as the console's HMM-KSYM lines name it; a
module's object is found under OBJ/.. by its name. DRIVER, FIGURE and
BACKING name the figure as insns.txt does (upstream-driver cpu_fault 4k).

Why: insns.txt says which function differs between two kernels; this
says which of its blocks, so that two builds can be compared by diffing
this script's output for each.
"""
import bisect
import glob
import importlib.util
import os
import subprocess
import sys

from vcpus import load_map      # System.map's text symbols, sorted


def load_report():
    """harness/insns-report.py as a module, for its console reader."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'insns-report.py')
    spec = importlib.util.spec_from_file_location('insns_report', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def figure_window(console, want):
    """Figure @want's window index, its repetitions, and its driver's
    module functions: {name: (load address, module)}."""
    figures, mods = load_report().read_console(console)
    index = next((i for i, (fig, _) in enumerate(figures)
                  if fig[:3] == want), None)
    if index is None:
        sys.exit('%s: no figure %s' % (console, ' '.join(want)))
    funcs = {}
    for addr, label in mods.get(want[0], []):
        name, _, module = label.partition(' [')
        funcs[name] = (addr, module.rstrip(']'))
    return index, figures[index][1], funcs


def disassemble(path, start=None, stop=None, symbol=None):
    """[(offset from the function's start, instruction text)]."""
    cmd = ['objdump', '-d', '--no-show-raw-insn', path]
    if start is not None:
        cmd += ['--start-address=%#x' % start, '--stop-address=%#x' % stop]
    text = subprocess.run(cmd, capture_output=True, text=True,
                          check=True).stdout.splitlines()
    out, base, on = [], start, symbol is None
    for line in text:
        if symbol is not None and line.endswith('<%s>:' % symbol):
            base, on = int(line.split()[0], 16), True
            continue
        if not on:
            continue
        if symbol is not None and not line.strip() and out:
            break
        addr, sep, insn = line.partition(':')
        try:
            a = int(addr.strip(), 16)
        except ValueError:
            continue
        if sep and insn.strip():
            out.append((a - base, insn.strip()))
    return out


def main():
    if len(sys.argv) != 8:
        sys.exit(__doc__)
    out, label, obj, func = sys.argv[1:5]
    want = tuple(sys.argv[5:8])
    console = os.path.join(out, 'boot-insns-%s' % label, 'console.log')
    window, reps, mods = figure_window(console, want)
    if func in mods:
        load, module = mods[func]
        kos = glob.glob(os.path.join(obj, '..', '**', module + '.ko'),
                        recursive=True)
        if not kos:
            sys.exit('no %s.ko under %s/..' % (module, obj))
        insns = disassemble(kos[0], symbol=func)
    else:
        addrs, names = load_map(os.path.join(obj, 'System.map'))
        if func not in names:
            sys.exit('%s is not in %s/System.map' % (func, obj))
        # The run's own copy: OBJ must still hold the kernel that ran.
        ran = load_map(os.path.join(out, 'System.map-%s' % label))
        if ran != (addrs, names):
            sys.exit('%s was rebuilt since %s ran: run the bench again' %
                     (obj, out))
        i = names.index(func)
        load = addrs[i]
        stop = next((a for a in addrs[i + 1:] if a > load), load + 0x10000)
        insns = disassemble(os.path.join(obj, 'vmlinux'), load, stop)
    size = insns[-1][0] + 16 if insns else 0
    blocks, w = {}, -1
    with open(os.path.join(out, 'insns-%s.counts' % label)) as f:
        for line in f:
            p = line.split()
            if p[0] == 'window':
                w += 1
            elif w == window and len(p) == 3:
                off = int(p[0], 16) - load
                if 0 <= off < size:
                    n, c = blocks.get(off, (int(p[1]), 0))
                    blocks[off] = (n, c + int(p[2]))
    offsets = [o for o, _ in insns]
    total = 0
    for off in sorted(blocks):
        n, c = blocks[off]
        total += c / reps
        print('--- +%#x: %d instructions, %.1f times per repetition' %
              (off, n, c / n / reps))
        i = bisect.bisect_left(offsets, off)
        for o, text in insns[i:i + n]:
            print('    +%#-6x %s' % (o, text))
    print('%s in %s: %.0f instructions per repetition' %
          (func, ' '.join(want), total))


if __name__ == '__main__':
    main()
