"""What one ``socket.recv(size)`` costs for a small answer, by ``size``: why
qqgate.upstream.http1 reads at most 128 KiB at a time.

``recv(size)`` allocates a ``size``-byte bytes object and shrinks it to what arrived. A block too
big for the free space at the top of glibc's heap (which malloc trims to 128 KiB by default) is
served with mmap, the shrink is an mremap and the free a munmap: three extra syscalls per read,
whatever arrives. A 200-byte message goes through a socket pair and back; the table gives µs per
send + recv.

    python -m bench.recv_size [--rounds 20000]
"""

from __future__ import annotations

import argparse
import socket
import timeit

SIZES_KIB = (4, 64, 127, 128, 129, 256, 1024)


def cost_us(size: int, rounds: int) -> float:
    ours, theirs = socket.socketpair()
    ours.settimeout(5)  # as the proxy's pooled connections are
    message = b"x" * 200

    def round_trip() -> None:
        theirs.sendall(message)
        ours.recv(size)

    try:
        return min(timeit.repeat(round_trip, number=rounds, repeat=5)) / rounds * 1e6
    finally:
        ours.close()
        theirs.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args()
    print(f"{'recv size':>10}  µs per 200-byte send + recv (best of 5 x {args.rounds})")
    for kib in SIZES_KIB:
        print(f"{kib:>6} KiB  {cost_us(kib * 1024, args.rounds):8.2f}")


if __name__ == "__main__":
    main()
