# SPDX-License-Identifier: GPL-2.0
"""harness/vcpus.py against a recorded QEMU monitor.

logs/vcpus-hmp.txt is what QEMU 7.2's HMP monitor printed for "info
registers -a" on a guest of ours (its echo of the typed command first, the
FPU and vector registers cut): CPU 0 halted in the idle loop, CPU 1 busy
in the kernel. A fake monitor on a socket answers with it, and the
symbols come from a small System.map.
"""

import os
import socket
import sys
import tempfile
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import vcpus  # noqa: E402

SYSTEM_MAP = '''\
ffffffff81000000 T _text
ffffffff81033690 T default_send_IPI_single_phys
ffffffff813b3fe0 T rep_movs_alternative
ffffffff813b9680 T default_idle
ffffffff82000000 T _etext
'''


class FakeMonitor(threading.Thread):
    """One connection: a greeting, then the recording for any command."""

    def __init__(self, path, answer):
        super().__init__(daemon=True)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        self.answer = answer

    def run(self):
        conn, _ = self.server.accept()
        conn.sendall(b'QEMU 7.2.22 monitor - type \'help\' for more '
                     b'information\r\n(qemu) ')
        command = b''
        while not command.endswith(b'\n'):
            command += conn.recv(4096)
        conn.sendall(self.answer.replace(b'\n', b'\r\n') + b'(qemu) ')
        conn.close()
        self.server.close()


class Vcpus(unittest.TestCase):

    def test_recorded_sample(self):
        with open(os.path.join(HERE, 'logs', 'vcpus-hmp.txt'), 'rb') as f:
            answer = f.read()
        with tempfile.TemporaryDirectory() as d:
            sock = os.path.join(d, 'monitor.sock')
            system_map = os.path.join(d, 'System.map')
            with open(system_map, 'w') as f:
                f.write(SYSTEM_MAP)
            monitor = FakeMonitor(sock, answer)
            monitor.start()
            lines = vcpus.sample(sock, vcpus.load_map(system_map))
            monitor.join(5)
        self.assertEqual(lines, [
            'CPU#0 rip=ffffffff813b9693 default_idle+0x13 cpl=0 if=1 halted',
            'CPU#1 rip=ffffffff810336b1 default_send_IPI_single_phys+0x21 '
            'cpl=0 if=0',
        ])

    def test_addresses_outside_the_image(self):
        table = vcpus.load_map(os.devnull)
        self.assertIsNone(vcpus.symbolize(0xffffffff81000000, table))
        with tempfile.NamedTemporaryFile('w', suffix='.map') as f:
            f.write(SYSTEM_MAP)
            f.flush()
            table = vcpus.load_map(f.name)
        self.assertEqual(vcpus.symbolize(0xffffffff813b3fe4, table),
                         'rep_movs_alternative+0x4')
        self.assertIsNone(vcpus.symbolize(0x403702, table))
        self.assertIsNone(vcpus.symbolize(0xffffffffc0001000, table))


if __name__ == '__main__':
    unittest.main()
