"""Runs extractor scripts inside the sandbox: ``python -I -S runner.py CONFIG`` (this file).

The host side (:mod:`streams.sandbox_worker`) starts this one file inside bubblewrap with
nothing else of the project: it is stdlib-only on purpose.  One process serves many documents,
one at a time, as JSON lines on stdin/stdout (the warm pool).  Each job runs in a forked child
that gets the job's rlimits and no handle on the protocol pipes, so a script can neither forge
a reply nor see state left by an earlier document: before replying, every other process in the
sandbox is killed, the scratch directory is emptied and System V IPC objects are removed.

Job:   {"script": sha, "source": text or null (cached by sha), "path", "info", "limits"}
Reply: {"meta": {...}} | {"error": "..."} | {"crash": "..."}, each with "clean": bool.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import shutil
import signal
import stat
import sys
from typing import Any

MAX_KEYS = 200
MAX_KEY_LEN = 100
MAX_STR_LEN = 2000
MAX_RESULT_BYTES = 4 << 20
OUTPUT_NAME = ".intellidox-output"
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
IPC_RMID = 0


def check_result(result: Any) -> dict[str, Any]:
    """Flat key-values of str/int/float/bool (None allowed), bounded in size."""
    if not isinstance(result, dict):
        raise ValueError(f"extract() returned {type(result).__name__}, expected a dict")
    if len(result) > MAX_KEYS:
        raise ValueError(f"extract() returned {len(result)} keys, at most {MAX_KEYS} allowed")
    clean: dict[str, Any] = {}
    for key, value in result.items():
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LEN:
            raise ValueError(f"key {key!r} must be a non-empty string of <= {MAX_KEY_LEN} chars")
        clean[key] = _check_value(key, value)
    return clean


def _check_value(key: str, value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{key}: {value} is not a finite number")
        return value
    if isinstance(value, str):
        return value[:MAX_STR_LEN]
    raise ValueError(f"{key}: {type(value).__name__} is not str, int, float or bool")


def load_extract(source: str) -> Any:
    """Run the script's module code and return its ``extract`` function."""
    namespace: dict[str, Any] = {"__name__": "intellidox_extractor", "__file__": "script.py"}
    exec(compile(source, "script.py", "exec"), namespace)
    extract = namespace.get("extract")
    if not callable(extract):
        raise ValueError("the script defines no extract(path, info) function")
    return extract


# -- the job child ---------------------------------------------------------------------------


def _child(job: dict[str, Any], source: str, result_fd: int, scratch: str) -> None:
    """Runs in the forked child; never returns."""
    try:
        _isolate(result_fd, os.path.join(scratch, OUTPUT_NAME), job["limits"])
        meta = check_result(load_extract(source)(job["path"], job["info"]))
        payload = json.dumps({"meta": meta})
    except BaseException as exc:  # the script's own failure is data for the host
        payload = json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]})
    with contextlib.suppress(OSError):
        _write_all(result_fd, payload.encode())
    os._exit(0)


def _isolate(result_fd: int, output: str, limits: dict[str, Any]) -> None:
    """Stdio to a scratch file, no other descriptors, the job's rlimits."""
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.closerange(3, result_fd)
    os.closerange(result_fd + 1, 1 << 16)
    if os.getpid() != 1:  # weak mode: one process group to kill afterwards
        os.setpgid(0, 0)
    _set_rlimits(limits)


def _set_rlimits(limits: dict[str, Any]) -> None:
    import resource

    cpu = math.ceil(float(limits["timeout_s"])) + 1
    wanted = {
        resource.RLIMIT_AS: (int(limits["memory_mb"]) << 20,) * 2,
        resource.RLIMIT_CPU: (cpu, cpu + 1),
        resource.RLIMIT_NPROC: (int(limits["processes"]),) * 2,
        resource.RLIMIT_NOFILE: (int(limits["open_files"]),) * 2,
        resource.RLIMIT_FSIZE: (int(limits["file_size_mb"]) << 20,) * 2,
        resource.RLIMIT_CORE: (0, 0),
        resource.RLIMIT_MSGQUEUE: (0, 0),
    }
    for which, (soft, hard) in wanted.items():
        resource.setrlimit(which, (soft, hard))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# -- the serving process -----------------------------------------------------------------------


class Runner:
    """Serves jobs from stdin; one forked child per job, cleaned up after."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.scratch: str = config["scratch"]
        self.contained = bool(config["contained"]) and os.getpid() == 1
        self.scripts: dict[str, str] = {}
        self._pending = b""

    def serve(self) -> None:
        _reply({"ready": True})
        while (line := self._read_line()) is not None:
            _reply(self.handle(json.loads(line)))

    def handle(self, job: dict[str, Any]) -> dict[str, Any]:
        if job.get("source") is not None:
            self.scripts = {job["script"]: job["source"]}  # one version at a time
        source = self.scripts.get(job["script"])
        if source is None:
            return {"error": "the sandbox does not hold that script version", "clean": True}
        reply = self._run(job, source)
        reply["clean"] = self.sweep()
        return reply

    def _run(self, job: dict[str, Any], source: str) -> dict[str, Any]:
        result_r, result_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(result_r)
            _child(job, source, result_w, self.scratch)
        os.close(result_w)
        try:
            data, status = self._collect(pid, result_r)
        except OverflowError as exc:
            os.kill(pid, signal.SIGKILL)
            data, status = json.dumps({"error": str(exc)}).encode(), os.waitpid(pid, 0)[1]
        finally:
            os.close(result_r)
            if not self.contained:  # weak mode: the job's process group is all we can reach
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
        return self._verdict(data, status)

    def _collect(self, pid: int, fd: int) -> tuple[bytes, int]:
        """The child's result bytes and exit status; the host closing stdin ends everything."""
        pidfd = os.pidfd_open(pid)
        data, watching = bytearray(), [fd, pidfd, 0]
        try:
            while pidfd in watching:
                for ready in select.select(watching, [], [])[0]:
                    if ready == 0:
                        self._abandon()
                    elif ready == pidfd:
                        watching.remove(pidfd)
                    elif not self._read_into(fd, data):
                        watching.remove(fd)
            os.set_blocking(fd, False)
            while fd in watching and self._read_into(fd, data):
                pass
        except BlockingIOError:
            pass
        finally:
            os.close(pidfd)
        return bytes(data), os.waitpid(pid, 0)[1]

    def _read_into(self, fd: int, data: bytearray) -> bool:
        chunk = os.read(fd, 1 << 16)
        data += chunk
        if len(data) > MAX_RESULT_BYTES:
            raise OverflowError("the script's result is too large")
        return bool(chunk)

    def _verdict(self, data: bytes, status: int) -> dict[str, Any]:
        with contextlib.suppress(ValueError):
            reply = json.loads(data)
            if isinstance(reply, dict) and ("meta" in reply or "error" in reply):
                return {k: reply[k] for k in ("meta", "error") if k in reply}
        return {"crash": self._crash_tail(status)}

    def _crash_tail(self, status: int) -> str:
        lines = _tail(os.path.join(self.scratch, OUTPUT_NAME)).strip().splitlines()
        if lines:
            return lines[-1][:300]
        if os.WIFSIGNALED(status):
            return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
        return f"exit code {os.waitstatus_to_exitcode(status)}"

    def sweep(self) -> bool:
        """Kill what the job left running, empty the scratch dir; False if anything stayed."""
        processes_gone = self._kill_the_rest() if self.contained else True
        if self.contained:
            _remove_ipc_objects()
        for entry in os.scandir(self.scratch):
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
        return processes_gone and not os.listdir(self.scratch)

    def _kill_the_rest(self) -> bool:
        """As pid 1 of our own pid namespace, ``kill(-1)`` reaches every other process."""
        for _ in range(5):
            with contextlib.suppress(ProcessLookupError):
                os.kill(-1, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                while True:
                    os.waitpid(-1, 0)
            if [p for p in os.listdir("/proc") if p.isdigit() and p != "1"] == []:
                return True
        return False

    def _abandon(self) -> None:
        """The host went away (stdin closed) in the middle of a job: stop everything."""
        if self.contained:
            self._kill_the_rest()
        os._exit(0)

    def _read_line(self) -> bytes | None:
        while b"\n" not in self._pending:
            chunk = os.read(0, 1 << 20)
            if not chunk:
                return None
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line


def _tail(path: str) -> str:
    """The end of the job's output file (the script may have swapped it for anything)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        try:
            size = os.fstat(fd).st_size
            if stat.S_ISREG(os.fstat(fd).st_mode):
                return os.pread(fd, 4096, max(0, size - 4096)).decode(errors="replace")
        finally:
            os.close(fd)
    return ""


def _remove_ipc_objects() -> None:
    """System V shared memory, semaphores and queues outlive processes; a job's must not."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    removers: dict[str, tuple[Any, tuple[Any, ...]]] = {
        "shm": (libc.shmctl, (IPC_RMID, None)),
        "sem": (libc.semctl, (0, IPC_RMID)),
        "msg": (libc.msgctl, (IPC_RMID, None)),
    }
    for kind, (remove, args) in removers.items():
        with contextlib.suppress(OSError), open(f"/proc/sysvipc/{kind}") as table:
            for row in list(table)[1:]:
                remove(int(row.split()[1]), *args)


def _reply(message: dict[str, Any]) -> None:
    _write_all(1, (json.dumps(message) + "\n").encode())


def _prepare(config: dict[str, Any]) -> None:
    """Before any script: no inherited descriptors, undumpable, die with the launcher."""
    os.closerange(3, 1 << 16)
    if sys.platform == "linux":
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # children cannot ptrace or read our memory
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # uid switch cleared bwrap's
    import site

    sys.path[:0] = config["paths"]
    for directory in config["site_dirs"]:
        site.addsitedir(directory)
    for module in config["preload"]:  # the libraries of the built-in script, imported once
        with contextlib.suppress(Exception), contextlib.redirect_stdout(sys.stderr):
            __import__(module)


def main(argv: list[str]) -> int:
    config = json.loads(argv[0])
    _prepare(config)
    Runner(config).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
