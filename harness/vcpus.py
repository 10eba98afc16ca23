#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Where a guest's vCPUs are: samples of QEMU's registers, as symbols.

vcpus.py SOCKET SYSTEM_MAP [SAMPLES]

SOCKET is the guest's HMP monitor (boot.sh gives every booted guest one,
monitor.sock in its console folder). Each of SAMPLES samples (default 5,
half a second apart) asks QEMU for every vCPU's registers ("info registers
-a") and prints one line per vCPU: its instruction pointer as a kernel
symbol from SYSTEM_MAP (an address outside the kernel image: a module's, or
user space at CPL 3), the privilege level, whether interrupts are enabled,
and whether it is halted. A guest that hangs with no kernel report says
here whether it spins in the kernel, in user space, or sits halted.

Written here because the kernel's tools read a guest from the inside, and a
hung guest may not run them: this reads it from QEMU.
"""
import bisect
import re
import socket
import sys
import time

PROMPT = b'(qemu) '


def until_prompt(s):
    """What the monitor says up to its next prompt."""
    buf = b''
    while not buf.endswith(PROMPT):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def hmp(path, command, timeout=20.0):
    """Run one HMP command on the monitor at PATH; return its output."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    until_prompt(s)             # the greeting
    s.sendall(command.encode() + b'\n')
    buf = until_prompt(s)
    s.close()
    text = re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', buf.decode(errors='replace'))
    return text.replace('\r', '')


def load_map(path):
    """Text symbols of a System.map, sorted: (addresses, names)."""
    syms = []
    try:
        f = open(path)
    except OSError:
        return [], []
    with f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[1] in 'tTwW':
                syms.append((int(parts[0], 16), parts[2]))
    syms.sort()
    return [a for a, _ in syms], [n for _, n in syms]


def symbolize(addr, table):
    """ADDR as name+0xoff, or None outside the kernel image."""
    addrs, names = table
    i = bisect.bisect_right(addrs, addr) - 1
    if i < 0 or not names or addr - addrs[i] > 0x100000 or \
            names[i] in ('_etext', '_end'):
        return None
    return '%s+0x%x' % (names[i], addr - addrs[i])


def sample(path, table):
    """One line per vCPU from one "info registers -a"."""
    out = hmp(path, 'info registers -a')
    lines = []
    for block in re.split(r'(?m)^CPU#', out)[1:]:
        cpu = block.split('\n', 1)[0].strip()
        rip = re.search(r'RIP=([0-9a-f]+)', block)
        rfl = re.search(r'RFL=([0-9a-f]+)', block)
        cpl = re.search(r'CPL=(\d)', block)
        hlt = re.search(r'HLT=(\d)', block)
        if not rip:
            continue
        addr = int(rip.group(1), 16)
        where = symbolize(addr, table)
        if where is None and not table[0]:
            where = '(no System.map)'
        elif where is None:
            where = 'user space' if cpl and cpl.group(1) == '3' else \
                'outside the kernel image (a module?)'
        lines.append('CPU#%s rip=%016x %s cpl=%s if=%d%s' % (
            cpu, addr, where, cpl.group(1) if cpl else '?',
            1 if rfl and int(rfl.group(1), 16) & 0x200 else 0,
            ' halted' if hlt and hlt.group(1) == '1' else ''))
    return lines


def main(argv):
    if len(argv) not in (3, 4):
        sys.stderr.write(__doc__)
        return 2
    path, system_map = argv[1], argv[2]
    samples = int(argv[3]) if len(argv) == 4 else 5
    table = load_map(system_map)
    for n in range(samples):
        if n:
            time.sleep(0.5)
        try:
            lines = sample(path, table)
        except OSError as e:
            print('vcpus: no answer from %s: %s' % (path, e))
            return 1
        print('sample %d:' % (n + 1))
        for line in lines:
            print('  ' + line)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
