"""Stages for the job-server tests, importable by the server's forked workers."""
import os
import sys
import time


def report(path: str, text: str) -> None:
    """Write where and as whom it ran, and say so on stdout and stderr."""
    with open(path, "w") as f:
        f.write(f"{text}\n{os.getpid()}\n{os.getcwd()}\n{os.environ.get('JOB_MARK', '')}\n")
    print(f"stdout of {text}")
    print(f"stderr of {text}", file=sys.stderr)


def fail(message: str) -> None:
    raise RuntimeError(message)


def exit_with(code: str) -> None:
    raise SystemExit(int(code))


def sleep_then_write(path: str, seconds: str) -> None:
    """Announce its pid, then sleep: a stop must end it before it writes `path`."""
    print(f"worker pid {os.getpid()}", flush=True)
    time.sleep(float(seconds))
    with open(path, "w") as f:
        f.write("finished")
