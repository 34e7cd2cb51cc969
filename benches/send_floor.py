#!/usr/bin/env python3
"""What one small loopback TCP send costs this machine: the floor under fan-out latency.

Opens N connected loopback socket pairs (TCP_NODELAY on both ends), then, ROUNDS
times, sends one 150-byte message on every server-side socket in turn, timing the
loop, and reads them all back (untimed). Nobody waits in epoll on the receiving
side, so no wake-up is paid: this is the kernel's send path alone (on loopback it
also runs the receiving socket's TCP input). A hub that fans one publication out
to N subscribers one frame each cannot finish sooner than N times this on one core.

    taskset -c 0 python3 benches/send_floor.py [N] [ROUNDS]   # defaults: 9000, 5
"""

import resource
import socket
import statistics
import sys
import time


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    n = min(n, (hard - 64) // 2)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    port = listener.getsockname()[1]
    clients, servers = [], []
    for _ in range(n):
        c = socket.create_connection(("127.0.0.1", port))
        s, _ = listener.accept()
        for sock in (c, s):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        clients.append(c)
        servers.append(s)
    message = b"x" * 150
    wall, cpu = [], []
    for _ in range(rounds):
        w0, c0 = time.perf_counter(), time.process_time()
        for s in servers:
            s.send(message)
        wall.append((time.perf_counter() - w0) / n)
        cpu.append((time.process_time() - c0) / n)
        for c in clients:
            c.recv(4096)
    us = statistics.median(cpu) * 1e6
    print(f"{n} sockets, {rounds} rounds: median {statistics.median(wall) * 1e6:.2f} us wall, {us:.2f} us CPU per send")
    print(f"one frame to each of 10,000 subscribers: at least {us * 10_000 / 1000:.0f} ms on one core")


if __name__ == "__main__":
    main()
