#!/usr/bin/python3
"""seal's benchmark harness; run it through benches/run.sh (see docs/benchmarks.md).

Measures container start, workflow overhead, compute overhead and image unpack
for seal and the tools one would use instead, then writes results.json,
results.md and SVG plots. Rootless tools run as an ordinary user.
"""

import argparse
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402
import sections  # noqa: E402

BENCH_USER = "seal-bench"
PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"


class Context:
    """The work directory, the seal binary and how to run things as the bench user."""

    def __init__(self, args, work):
        self.args = args
        self.quick = args.quick
        self.work = work
        self.repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.is_root = os.geteuid() == 0
        self.user = pwd.getpwnam(BENCH_USER) if self.is_root else pwd.getpwuid(os.getuid())
        self.seal = os.path.join(work, "seal")
        shutil.copy2(args.seal, self.seal)
        self.seal_home = self.path("seal-home")
        self.home = self.path("home")
        self.tmp = self.path("tmp")
        self.give_to_user(work)
        self.cores = os.cpu_count() or 1
        self.notes = []

    def path(self, *parts):
        """A directory below the work directory (made if missing)."""
        path = os.path.join(self.work, *parts)
        os.makedirs(path, exist_ok=True)
        return path

    def give_to_user(self, root):
        """Hands a tree to the bench user (root only; otherwise it is ours already)."""
        if not self.is_root:
            return
        uid, gid = self.user.pw_uid, self.user.pw_gid
        os.lchown(root, uid, gid)
        for top, dirs, files in os.walk(root):
            for name in dirs + files:
                os.lchown(os.path.join(top, name), uid, gid)

    def env(self, extra=None):
        env = {
            "HOME": self.home, "USER": self.user.pw_name, "LOGNAME": self.user.pw_name,
            "PATH": PATH, "LANG": "C.UTF-8", "TMPDIR": self.tmp,
            "SEAL_HOME": self.seal_home, "NO_COLOR": "1",
        }
        env.update(extra or {})
        return env

    def wrap(self, argv, as_root=False, env=None):
        """argv run as the bench user (or as root) with a clean environment."""
        pairs = [f"{k}={v}" for k, v in self.env(env).items()]
        if as_root or not self.is_root:
            return ["env", "-i", *pairs, *argv]
        return ["runuser", "-u", self.user.pw_name, "--", "env", "-i", *pairs, *argv]

    def capture(self, argv, as_root=False, env=None, cwd=None, check=True, timeout=None):
        """Runs argv once and returns the completed process."""
        done = subprocess.run(self.wrap(argv, as_root, env), capture_output=True, text=True,
                              cwd=cwd or self.work, timeout=timeout)
        if check and done.returncode != 0:
            raise sections.Failure(f"`{' '.join(argv[:4])}` exited {done.returncode}: "
                          f"{last_line(done.stderr or done.stdout)}")
        return done

    def time(self, argv, reps, warmup=1, as_root=False, env=None, cwd=None, timeout=None):
        """Runs argv `reps` times (after `warmup` untimed runs) and returns the
        wall times in seconds. `{i}` in an argument becomes the run's number."""
        helper = ["/usr/bin/python3", os.path.abspath(__file__), "__time",
                  "--reps", str(reps), "--warmup", str(warmup), "--cwd", cwd or self.work]
        if timeout:
            helper += ["--timeout", str(timeout)]
        done = subprocess.run(self.wrap(helper + ["--", *argv], as_root, env),
                              capture_output=True, text=True)
        try:
            result = json.loads(done.stdout)
        except json.JSONDecodeError:
            raise sections.Failure(f"timing helper failed: {last_line(done.stderr)}") from None
        if result.get("error"):
            raise sections.Failure(result["error"])
        return result


def last_line(text):
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"


# --- the timing helper (runs as the bench user) -----------------------------


def time_main(argv):
    parser = argparse.ArgumentParser(prog="bench.py __time")
    parser.add_argument("--reps", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--cwd", required=True)
    parser.add_argument("--timeout", type=float)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    os.chdir(args.cwd)
    times, user, system = [], [], []
    log = os.path.join(tempfile.gettempdir(), f"seal-bench-time-{os.getpid()}.log")
    try:
        for run in range(args.warmup + args.reps):
            concrete = [word.replace("{i}", str(run)) for word in command]
            wall, rusage, status = spawn_and_wait(concrete, log, args.timeout)
            if status != 0:
                with open(log, errors="replace") as f:
                    tail = last_line(f.read())
                print(json.dumps({"error": f"`{' '.join(concrete[:4])}` {status}: {tail}"}))
                return 0
            if run >= args.warmup:
                times.append(wall)
                user.append(rusage.ru_utime)
                system.append(rusage.ru_stime)
    finally:
        if os.path.exists(log):
            os.unlink(log)
    print(json.dumps({"times": times, "user": user, "sys": system}))
    return 0


def spawn_and_wait(argv, log, timeout):
    """posix_spawn + wait4: the wall time and resource use of one run."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    actions = [(os.POSIX_SPAWN_DUP2, fd, 1), (os.POSIX_SPAWN_DUP2, fd, 2),
               (os.POSIX_SPAWN_CLOSE, fd)]
    started = time.perf_counter()
    try:
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions, setsid=True)
    except OSError as err:
        os.close(fd)
        return 0.0, None, f"could not start: {err}"
    os.close(fd)

    def expire(_signum, _frame):
        os.killpg(pid, signal.SIGKILL)

    if timeout:
        signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    _, status, rusage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    if timeout:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if os.WIFSIGNALED(status) and wall >= timeout:
            return wall, rusage, f"did not finish within {timeout:.0f} s (stopped)"
    code = os.waitstatus_to_exitcode(status)
    return wall, rusage, 0 if code == 0 else f"exited {code}"


# --- the run ----------------------------------------------------------------


def machine():
    """What the numbers were measured on."""
    def first(path, key):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(key):
                        return line.split(":", 1)[1].strip() if ":" in line else \
                            line.split("=", 1)[1].strip().strip('"')
        except OSError:
            return None
    mem_kb = first("/proc/meminfo", "MemTotal")
    return {
        "cpu": first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "kernel": os.uname().release,
        "os": first("/etc/os-release", "PRETTY_NAME"),
        "memory": mem_kb,
        "load_average": open("/proc/loadavg").read().split()[:3],
        "cgroups": "hybrid (v1 + unified)" if os.path.isdir("/sys/fs/cgroup/unified")
        else ("v2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "v1"),
    }


def versions(ctx):
    found = {}
    probes = {
        "seal": [ctx.seal, "--version"], "crun": ["crun", "--version"],
        "runc": ["runc", "--version"], "podman": ["podman", "--version"],
        "charliecloud": ["ch-run", "--version"], "umoci": ["umoci", "--version"],
        "snakemake": ["snakemake", "--version"], "cwltool": ["cwltool", "--version"],
        "busybox": ["/bin/busybox"],
    }
    for name, argv in probes.items():
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                                  env={"PATH": PATH, "USER": "root", "HOME": ctx.home})
            text = (done.stdout or done.stderr).strip().splitlines()
            found[name] = text[0] if text else "?"
        except (OSError, subprocess.TimeoutExpired) as err:
            found[name] = f"not available ({err})"
    rev = subprocess.run(["git", "-C", ctx.repo, "describe", "--always", "--dirty"],
                         capture_output=True, text=True)
    found["seal_commit"] = rev.stdout.strip() or "unknown"
    return found


def parse_args(argv):
    parser = argparse.ArgumentParser(description="seal benchmarks (see docs/benchmarks.md)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: tiny sizes, one repetition, no time assertions")
    parser.add_argument("--seal", required=True, help="the seal binary to measure")
    parser.add_argument("--out", required=True, help="where results.json/.md and plots go")
    parser.add_argument("--only", default="start,workflow,compute,unpack",
                        help="comma-separated sections to run")
    parser.add_argument("--reps", type=int, help="repetitions of the workflow/compute runs")
    parser.add_argument("--start-reps", type=int, help="repetitions of each container start")
    parser.add_argument("--big-reps", type=int, help="repetitions of the 10,000-step runs")
    parser.add_argument("--big-timeout", type=float, default=600,
                        help="seconds before a 10,000-step run of a peer is stopped")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    defaults = (1, 10, 1) if args.quick else (5, 100, 1)
    args.reps = args.reps or defaults[0]
    args.start_reps = args.start_reps or defaults[1]
    args.big_reps = args.big_reps or defaults[2]
    return args


def main(argv):
    if argv[:1] == ["__time"]:
        return time_main(argv[1:])
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="seal-bench-", dir="/tmp")
    os.chmod(work, 0o755)
    ctx = Context(args, work)
    document = {"quick": args.quick, "machine": machine(), "started": time.strftime(
        "%Y-%m-%dT%H:%M:%S%z"), "command": " ".join(["benches/run.sh", *sys.argv[1:]])}
    results = []
    try:
        document["versions"] = versions(ctx)
        for name in args.only.split(","):
            print(f"== {name}", file=sys.stderr, flush=True)
            results += getattr(sections, name)(ctx)
    finally:
        sections.cleanup(ctx)
        if args.keep:
            print(f"work directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    document["results"] = results
    document["load_average_after"] = open("/proc/loadavg").read().split()[:3]
    document["notes"] = ctx.notes
    for result in results:
        result["stats"] = report.stats_of(result)
    report.dump_json(os.path.join(args.out, "results.json"), document)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(sections.markdown(document))
    for name, svg in sections.plots(document).items():
        with open(os.path.join(args.out, name), "w") as f:
            f.write(svg)
    print(f"results: {args.out}/results.md", file=sys.stderr)
    return verdict(results)


def verdict(results):
    """0 when every seal measurement ran; peers may be skipped or fail (reported)."""
    bad = [r for r in results if r["tool"] == "seal" and r["status"] != "ok"]
    for r in results:
        if r["status"] != "ok":
            print(f"  {r['status']}: {r['group']}/{r['name']}: {r.get('reason')}",
                  file=sys.stderr)
    if bad or not results:
        print("error: a seal measurement did not run", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
