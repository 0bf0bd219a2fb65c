#!/usr/bin/env python3
"""Health probes and free-port picking for e2e/stack, standard library only.

Each probe speaks the server's own protocol (not just "the port is open"), so
"healthy" means the server answers requests:

    probe.py port [EXCLUDE...]       print a free 127.0.0.1 port
    probe.py free PORT               exit 0 if PORT can be bound on 127.0.0.1
    probe.py tcp PORT                exit 0 if PORT accepts connections
    probe.py kafka PORT              ApiVersions request, error_code must be 0
    probe.py mongo PORT              OP_MSG {hello: 1}, reply must have ok: 1
    probe.py redis PORT              PING must answer +PONG (or -NOAUTH)

Exit status 0 = healthy; otherwise a one-line reason goes to stderr.
"""

import random
import socket
import struct
import sys

TIMEOUT = 3.0

# Ports are picked below the kernel's ephemeral range (32768+ on Linux), so a
# client connection's local port can never steal a server's remembered port
# between a `down` and the next `up`.
PORT_LOW, PORT_HIGH = 20000, 32000


def can_bind(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As every server here does: connections of a stopped server linger in
    # TIME_WAIT and must not make its port look taken.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_port(exclude):
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randint(PORT_LOW, PORT_HIGH)
        if port not in exclude and can_bind(port):
            return port
    raise SystemExit("no free port found on 127.0.0.1")


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by server")
        buf += chunk
    return buf


def kafka(port):
    # ApiVersions v0 is the one request every broker must answer at any
    # version (KIP-511), so it is safe across Kafka releases.
    correlation = 7
    client_id = b"lw-stack-probe"
    body = struct.pack(">hhih", 18, 0, correlation, len(client_id)) + client_id
    with connect(port) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", recv_exact(s, 4))
        resp = recv_exact(s, size)
    corr, err, count = struct.unpack(">ihi", resp[:10])
    if corr != correlation:
        raise RuntimeError("kafka: bad correlation id %d" % corr)
    if err != 0:
        raise RuntimeError("kafka: ApiVersions error_code %d" % err)
    if count <= 0:
        raise RuntimeError("kafka: ApiVersions listed no APIs")


def bson_cstring(data, pos):
    end = data.index(b"\x00", pos)
    return data[pos:end].decode(), end + 1


def bson_top_level(doc):
    """Top-level fields of a BSON document, enough types for a hello reply."""
    fixed = {0x01: 8, 0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x10: 4, 0x11: 8, 0x12: 8, 0x13: 16}
    out = {}
    pos = 4
    while doc[pos] != 0:
        kind = doc[pos]
        name, pos = bson_cstring(doc, pos + 1)
        if kind == 0x01:
            out[name] = struct.unpack("<d", doc[pos:pos + 8])[0]
        elif kind == 0x10:
            out[name] = struct.unpack("<i", doc[pos:pos + 4])[0]
        elif kind == 0x08:
            out[name] = doc[pos] == 1
        if kind in fixed:
            pos += fixed[kind]
        elif kind in (0x02, 0x0D, 0x0E):  # string, js code, symbol
            (n,) = struct.unpack("<i", doc[pos:pos + 4])
            if kind == 0x02:
                out[name] = doc[pos + 4:pos + 3 + n].decode()
            pos += 4 + n
        elif kind in (0x03, 0x04, 0x0F):  # document, array, code_w_s
            (n,) = struct.unpack("<i", doc[pos:pos + 4])
            pos += n
        elif kind == 0x05:  # binary
            (n,) = struct.unpack("<i", doc[pos:pos + 4])
            pos += 5 + n
        elif kind == 0x0B:  # regex: two cstrings
            _, pos = bson_cstring(doc, pos)
            _, pos = bson_cstring(doc, pos)
        else:
            raise RuntimeError("mongo: unexpected BSON type 0x%02x" % kind)
    return out


def bson_doc(fields):
    body = b""
    for name, value in fields:
        key = name.encode() + b"\x00"
        if isinstance(value, int):
            body += b"\x10" + key + struct.pack("<i", value)
        else:
            raw = value.encode() + b"\x00"
            body += b"\x02" + key + struct.pack("<i", len(raw)) + raw
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def mongo(port):
    # OP_MSG (opcode 2013) with a single body section: what every driver
    # sends first; FerretDB and MongoDB both answer it before any auth.
    doc = bson_doc([("hello", 1), ("$db", "admin")])
    payload = struct.pack("<I", 0) + b"\x00" + doc
    header = struct.pack("<iiii", 16 + len(payload), 42, 0, 2013)
    with connect(port) as s:
        s.sendall(header + payload)
        (length, _req, resp_to, opcode) = struct.unpack("<iiii", recv_exact(s, 16))
        data = recv_exact(s, length - 16)
    if opcode != 2013 or resp_to != 42:
        raise RuntimeError("mongo: unexpected reply opcode %d" % opcode)
    if data[4] != 0:
        raise RuntimeError("mongo: unexpected OP_MSG section kind %d" % data[4])
    reply = bson_top_level(data[5:])
    if reply.get("ok") not in (1, 1.0, True):
        raise RuntimeError("mongo: hello answered %r" % reply)


def redis(port):
    with connect(port) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        line = s.recv(64)
    # A server that wants a user first (the stack's does) answers NOAUTH: it is up.
    if not line.startswith((b"+PONG", b"-NOAUTH")):
        raise RuntimeError("redis: PING answered %r" % line)


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "port":
        print(pick_port({int(a) for a in args if a}))
        return 0
    port = int(args[0])
    if cmd == "free":
        return 0 if can_bind(port) else 1
    probes = {"tcp": lambda p: connect(p).close(), "kafka": kafka, "mongo": mongo, "redis": redis}
    try:
        probes[cmd](port)
    except KeyError:
        raise SystemExit("unknown probe %r" % cmd)
    except Exception as exc:  # any failure is "not healthy", with the reason
        sys.stderr.write("%s probe on 127.0.0.1:%d: %s\n" % (cmd, port, exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
