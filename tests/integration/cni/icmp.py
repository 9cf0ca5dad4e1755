"""ICMP echo from Python (the test machines have no ping): `python icmp.py ADDR...`.

Sends one echo request to every address and waits (bounded) for the replies; prints the
addresses that answered, one per line. Run it inside a namespace with nsenter.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def ping_all(addresses: list[str], timeout: float = 3.0, tries: int = 3) -> set[str]:
    ident = os.getpid() & 0xFFFF
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    answered: set[str] = set()
    try:
        for attempt in range(tries):
            for seq, addr in enumerate(addresses):
                if addr in answered:
                    continue
                header = struct.pack("!BBHHH", 8, 0, 0, ident, seq + attempt * 1000)
                payload = b"pinnace-cni"
                packet = struct.pack("!BBHHH", 8, 0, checksum(header + payload), ident, seq + attempt * 1000)
                sock.sendto(packet + payload, (addr, 0))
            deadline = time.monotonic() + timeout / tries
            while len(answered) < len(addresses):
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([sock], [], [], left)[0]:
                    break
                data, (src, _) = sock.recvfrom(2048)
                ihl = (data[0] & 0x0F) * 4
                kind, _code, _sum, rid, _seq = struct.unpack("!BBHHH", data[ihl : ihl + 8])
                if kind == 0 and rid == ident and src in addresses:
                    answered.add(src)
            if len(answered) == len(addresses):
                break
    finally:
        sock.close()
    return answered


if __name__ == "__main__":
    for address in sorted(ping_all(sys.argv[1:])):
        print(address)
