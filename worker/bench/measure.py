"""Runs one contestant as a child process and measures its wall time and peak RSS.

Peak RSS: getrusage(RUSAGE_CHILDREN) is a maximum over every child the driver ever had,
so it cannot tell one run from the next; and even os.wait4 on the very child is wrong on
Linux, because a process keeps the high-water RSS of the process it was forked from
across exec: a 5 MB Rust run forked from a 200 MB driver reports 200 MB. So the child is
started under GNU time (/usr/bin/time, itself about 1 MB), which forks the contestant
and reports that grandchild's peak RSS. Without GNU time, the wait4 figure is used and
flagged: it is then at least the driver's own RSS.
"""

import os
import re
import resource
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

READ_CHUNK = 1 << 20
GNU_TIME = "/usr/bin/time"
RSS_LINE = re.compile(rb"BENCH_RSS_KB (\d+)")


def gnu_time_available():
    try:
        out = subprocess.run([GNU_TIME, "--version"], capture_output=True, check=False)
    except OSError:
        return False
    return b"GNU" in out.stdout + out.stderr


@dataclass
class Run:
    wall_s: float
    max_rss_mb: float
    exit_code: int
    stdout_lines: int
    stdout_head: bytes  # the first bytes of stdout, for checking a JSON answer
    stderr_tail: str
    rss_exact: bool = True  # False: wait4's figure, which includes the driver's RSS
    extra: dict = field(default_factory=dict)

    @property
    def ok(self):
        return self.exit_code == 0


def _limit_memory(limit_bytes):
    def apply():
        # Address-space limit: a baseline that would exhaust the shared machine fails
        # with MemoryError instead of calling the OOM killer on everyone.
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return apply


def run(cmd, *, mem_limit_bytes=None, head_bytes=64 * 1024, env=None, use_gnu_time=True):
    """Runs cmd, reading its stdout as it comes (counting lines, keeping the head) so
    the child never blocks on a full pipe, and returns a Run."""
    with tempfile.TemporaryFile() as stderr, tempfile.NamedTemporaryFile() as rss_out:
        if use_gnu_time:
            cmd = [GNU_TIME, "-f", "BENCH_RSS_KB %M", "-o", rss_out.name] + list(cmd)
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            preexec_fn=_limit_memory(mem_limit_bytes) if mem_limit_bytes else None,
        )
        lines, head, last = 0, bytearray(), b"\n"
        fd = proc.stdout.fileno()
        while True:
            chunk = os.read(fd, READ_CHUNK)
            if not chunk:
                break
            lines += chunk.count(b"\n")
            last = chunk[-1:]
            if len(head) < head_bytes:
                head += chunk[: head_bytes - len(head)]
        if last != b"\n":
            lines += 1  # a last line without its newline still counts
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        # Popen must not wait for a pid that wait4 already reaped.
        proc.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        tail = stderr.read()[-2000:].decode("utf-8", "replace")
        found = RSS_LINE.findall(rss_out.read())
    # Linux reports ru_maxrss, and GNU time %M, in kilobytes.
    rss_kb = int(found[-1]) if found else usage.ru_maxrss
    return Run(
        wall_s=wall,
        max_rss_mb=rss_kb / 1024,
        rss_exact=bool(found),
        exit_code=proc.returncode,
        stdout_lines=lines,
        stdout_head=bytes(head),
        stderr_tail=tail,
    )


def warm_page_cache(path):
    """Reads a file once so that every contestant finds it in the page cache: the
    first contestant would otherwise pay for the disk alone."""
    with open(path, "rb") as f:
        while f.read(16 * READ_CHUNK):
            pass
