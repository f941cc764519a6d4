"""The four benchmark sections, each returning a list of results, and the
markdown and plots made from them."""

import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

import report
import workloads


class Failure(Exception):
    """A measurement that could not run; the message says why."""


def result(group, name, tool, times=None, status="ok", **extra):
    entry = {"group": group, "name": name, "tool": tool, "status": status, "times": times}
    entry.update(extra)
    return entry


def measure(group, name, tool, run, **extra):
    """Runs `run()` (returning seconds, or a dict with `times`) and records it;
    a Failure becomes a failed result with its reason."""
    print(f"   {group}: {name}", file=sys.stderr, flush=True)
    try:
        got = run()
    except Failure as err:
        return result(group, name, tool, status="failed", reason=str(err), **extra)
    except (OSError, subprocess.SubprocessError) as err:
        return result(group, name, tool, status="failed", reason=str(err), **extra)
    if isinstance(got, dict):
        extra.update({k: v for k, v in got.items() if k != "times"})
        return result(group, name, tool, got.get("times"), **extra)
    return result(group, name, tool, got, **extra)


def skipped(group, name, tool, reason):
    print(f"   {group}: {name}: skipped ({reason})", file=sys.stderr, flush=True)
    return result(group, name, tool, status="skipped", reason=reason)


def have(program):
    return shutil.which(program, path="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")


# --- 1. container start -------------------------------------------------------


def start(ctx):
    rootfs = ctx.path("start", "rootfs")
    workloads.busybox_rootfs(rootfs)
    ctx.give_to_user(ctx.path("start"))
    ctx.image = ctx.image if hasattr(ctx, "image") else import_busybox(ctx, rootfs)
    reps = ctx.args.start_reps
    out = [
        measure("start", "fork/exec /bin/true (physical limit)", "fork-exec",
                lambda: ctx.time(["/bin/true"], reps, warmup=3)["times"]),
        measure("start", "unshare user+mount+pid, chroot (floor)", "unshare",
                lambda: checked_time(ctx, unshare_argv(rootfs, []), reps)),
        measure("start", "unshare, plus net+ipc+uts (seal's set)", "unshare",
                lambda: checked_time(ctx, unshare_argv(rootfs, ["--net", "--ipc", "--uts"]),
                                     reps)),
        seal_runtime_start(ctx, rootfs, reps),
        seal_one_step(ctx, reps),
    ]
    out += crun_start(ctx, rootfs, reps)
    out.append(runc_start(ctx, rootfs, reps))
    out.append(charliecloud_start(ctx, rootfs, reps))
    out.append(podman_start(ctx, rootfs, max(3, reps // 5)))
    return out


def import_busybox(ctx, rootfs):
    done = ctx.capture([ctx.seal, "image", "import", rootfs, "--tag", "bench/busybox:1"])
    return done.stdout.strip()


def unshare_argv(rootfs, extra):
    def argv(program):
        return ["unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork",
                *extra, "chroot", rootfs, program]
    return argv


def checked_time(ctx, argv_of, reps, as_root=False, env=None):
    """Checks that the tool really runs the program inside (`/bin/false` must
    fail), then times `/bin/true`."""
    done = ctx.capture(argv_of("/bin/false"), as_root=as_root, env=env, check=False)
    if done.returncode != 1:
        raise Failure(f"running /bin/false gave status {done.returncode}, not 1: "
                      f"{(done.stderr or '').strip()[:300]}")
    return ctx.time(argv_of("/bin/true"), reps, warmup=3, as_root=as_root, env=env)["times"]


def seal_runtime_start(ctx, rootfs, reps):
    """`seal __container --run-spec SPEC --repeat N`: spawn-to-outcome, in process."""
    def run():
        sandbox, logs = ctx.path("start", "sandbox"), ctx.path("start", "logs")
        spec = os.path.join(ctx.work, "start", "true.json")
        workloads.container_spec(spec, rootfs, sandbox, logs, ["/bin/true"])
        false = os.path.join(ctx.work, "start", "false.json")
        workloads.container_spec(false, rootfs, sandbox, logs, ["/bin/false"])
        ctx.give_to_user(ctx.path("start"))
        outcome = json.loads(ctx.capture([ctx.seal, "__container", "--run-spec", false]).stdout)
        if outcome["termination"] != {"kind": "exited", "code": 1}:
            raise Failure(f"/bin/false in seal's container gave {outcome['termination']}")
        done = ctx.capture([ctx.seal, "__container", "--run-spec", spec, "--repeat",
                            str(reps + 3)])
        match = re.search(r"runs: (\d+), median: ([\d.]+) ms, min: ([\d.]+) ms, "
                          r"max: ([\d.]+) ms", done.stderr)
        if not match:
            raise Failure(f"no timing summary from seal: {done.stderr.strip()[:300]}")
        walls = [json.loads(line)["wall"] for line in done.stdout.splitlines() if line]
        n, median, low, high = match.groups()
        return {"stats": {"median": float(median) / 1e3, "min": float(low) / 1e3,
                          "max": float(high) / 1e3, "n": int(n)},
                "container_wall_median": statistics.median(
                    w["secs"] + w["nanos"] / 1e9 for w in walls)}
    return measure("start", "seal runtime (spawn to outcome)", "seal", run,
                   note="`seal __container --run-spec --repeat`; includes exec of seal's "
                        "monitor")


def seal_one_step(ctx, reps):
    directory = ctx.path("start", "pipeline")
    pipeline = os.path.join(directory, "one.yaml")
    workloads.seal_one_step(pipeline, ctx.image)
    ctx.give_to_user(directory)
    argv = [ctx.seal, "run", "-q", pipeline, "-o", os.path.join(directory, "out-{i}")]
    return measure("start", "seal run, one-step pipeline (end to end)", "seal",
                   lambda: ctx.time(argv, max(5, reps // 2), warmup=2)["times"],
                   note="whole `seal run`: sealing itself, load, plan, image check, "
                        "container, provenance")


def bundle(ctx, runtime, rootfs, name, program):
    """A rootless OCI bundle made by `RUNTIME spec --rootless` as the bench user."""
    directory = ctx.path("start", f"{runtime}-{name}")
    config_path = os.path.join(directory, "config.json")
    if os.path.exists(config_path):
        os.unlink(config_path)
    ctx.give_to_user(directory)
    ctx.capture([runtime, "spec", "--rootless"], cwd=directory)
    with open(config_path) as f:
        config = json.load(f)
    config["process"]["terminal"] = False
    config["process"]["args"] = [program]
    config["root"] = {"path": rootfs, "readonly": True}
    with open(config_path, "w") as f:
        json.dump(config, f, indent=1)
    ctx.give_to_user(directory)
    return directory


def oci_runtime_argv(ctx, runtime, rootfs, wrapper=None, flags=()):
    state = ctx.path("start", f"{runtime}-state")
    ctx.give_to_user(state)
    bundles = {p: bundle(ctx, runtime, rootfs, p.strip("/").replace("/", "-"), p)
               for p in ("/bin/true", "/bin/false")}

    def argv(program):
        command = [runtime, *flags, "--root", state, "run", "--bundle", bundles[program],
                   f"bench-{{i}}-{program.rsplit('/', 1)[-1]}"]
        return wrapper(command) if wrapper else command
    return argv


def crun_start(ctx, rootfs, reps):
    if not have("crun"):
        return [skipped("start", "crun run (rootless)", "crun", "crun is not installed")]
    plain = measure("start", "crun run (rootless)", "crun",
                    lambda: checked_time(ctx, oci_runtime_argv(ctx, "crun", rootfs), reps))
    if plain["status"] == "ok" or "hybrid" not in plain.get("reason", ""):
        return [plain]

    def hide_hybrid(command):
        # A private mount namespace where /sys/fs/cgroup is an empty tmpfs, so crun
        # sees no cgroup tree at all and runs without one.
        script = 'mount -t tmpfs none /sys/fs/cgroup && exec "$@"'
        return ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh",
                *command]
    workaround = measure(
        "start", "crun run, hybrid cgroups hidden (workaround)", "crun",
        lambda: checked_time(ctx, oci_runtime_argv(ctx, "crun", rootfs, hide_hybrid,
                                                   ["--cgroup-manager=disabled"]), reps),
        note="crun in its own user+mount namespace with /sys/fs/cgroup hidden; "
             "includes that extra unshare")
    return [plain, workaround]


def runc_start(ctx, rootfs, reps):
    if not have("runc"):
        return skipped("start", "runc run (rootless)", "runc", "runc is not installed")
    return measure("start", "runc run (rootless)", "runc",
                   lambda: checked_time(ctx, oci_runtime_argv(ctx, "runc", rootfs), reps),
                   note="bundle from `runc spec --rootless`")


def charliecloud_start(ctx, rootfs, reps):
    if not have("ch-run"):
        return skipped("start", "Charliecloud ch-run", "charliecloud", "ch-run is not installed")
    return measure("start", "Charliecloud ch-run", "charliecloud",
                   lambda: checked_time(ctx, lambda p: ["ch-run", rootfs, "--", p], reps),
                   note="user+mount namespaces only (no PID namespace)")


def podman_start(ctx, rootfs, reps):
    name = "podman run --rm --network none (as root)"
    if not ctx.is_root:
        return skipped("start", name, "podman", "needs root (run the harness as root)")
    if not have("podman"):
        return skipped("start", name, "podman", "podman is not installed")
    storage = ctx.path("podman")
    base = ["podman", "--root", f"{storage}/root", "--runroot", f"{storage}/run",
            "--tmpdir", ctx.path("podman", "tmp"), "--storage-driver", "overlay"]
    ctx.podman = base
    tar = subprocess.run(["tar", "-C", rootfs, "-c", "."], capture_output=True, check=True)
    subprocess.run(base + ["import", "-", "localhost/seal-bench-busybox:1"],
                   input=tar.stdout, capture_output=True, check=True)
    flags = ["--rm", "--network", "none", "--pull=never", "--ulimit", "nofile=20000:20000",
             "--ulimit", "nproc=32768:32768"]

    def argv_with(runtime):
        extra = ["--runtime", runtime] if runtime else []
        return lambda p: base + extra + ["run", *flags, "localhost/seal-bench-busybox:1", p]
    plain = measure("start", name, "podman",
                    lambda: checked_time(ctx, argv_with(None), reps, as_root=True))
    if plain["status"] == "ok" or not have("runc"):
        return plain
    ctx.notes.append(f"podman with its default runtime failed ({plain['reason']}); "
                     "measured with --runtime runc")
    return measure("start", "podman run --rm --network none --runtime runc (as root)",
                   "podman", lambda: checked_time(ctx, argv_with("runc"), reps, as_root=True),
                   note="default runtime (crun) refused: " + plain["reason"][:120])


# --- 2. workflow overhead -----------------------------------------------------


def workflow(ctx):
    if not hasattr(ctx, "image"):
        rootfs = ctx.path("start", "rootfs")
        workloads.busybox_rootfs(rootfs)
        ctx.give_to_user(ctx.path("start"))
        ctx.image = import_busybox(ctx, rootfs)
    small, big = (10, 100) if ctx.quick else (100, 10000)
    shapes = [("one", "fanout", 1), (f"wide {small}", "fanout", small),
              (f"chain {small}", "chain", small), (f"fan-out {big}", "fanout", big)]
    out = []
    for label, shape, n in shapes:
        reps = ctx.args.big_reps if n == big else ctx.args.reps
        out.append(seal_workflow(ctx, label, shape, n, reps))
        out.append(snakemake_workflow(ctx, label, shape, n, reps))
        out.append(cwltool_workflow(ctx, label, shape, n, reps))
    out.append(seal_plan(ctx, big))
    return out


def wf_dir(ctx, tool, label):
    return ctx.path("wf", tool, label.replace(" ", "-"))


def seal_workflow(ctx, label, shape, n, reps):
    directory = wf_dir(ctx, "seal", label)
    pipeline = os.path.join(directory, "p.yaml")
    if shape == "fanout":
        workloads.seal_fanout(pipeline, ctx.image, n)
    else:
        workloads.seal_chain(pipeline, ctx.image, n)
    ctx.give_to_user(directory)
    argv = [ctx.seal, "run", "-q", pipeline, "-o", os.path.join(directory, "out-{i}")]

    def run():
        timed = ctx.time(argv, reps, warmup=0, timeout=ctx.args.big_timeout)
        return {"times": timed["times"], "container": container_time(directory, ctx.cores)}
    return measure("workflow", label, "seal", run, steps=n, shape=shape)


def container_time(directory, cores):
    """From the last run's provenance: the sum of container wall times, and
    that sum spread over the cores (what the containers alone would take)."""
    runs = sorted(glob.glob(os.path.join(directory, "out-*", "provenance.json")))
    if not runs:
        return None
    with open(runs[-1]) as f:
        steps = json.load(f)["steps"]
    total = sum(s["resources"]["used"]["wall_seconds"] for s in steps
                if s["resources"].get("used"))
    return {"sum_seconds": total, "per_core_seconds": total / cores, "steps": len(steps)}


def snakemake_workflow(ctx, label, shape, n, reps):
    if not have("snakemake"):
        return skipped("workflow", label, "snakemake", "snakemake is not installed")
    directory = wf_dir(ctx, "snakemake", label)
    workloads.snakefile(os.path.join(directory, "Snakefile"), shape)
    ctx.give_to_user(directory)
    script = 'mkdir -p "$1" && d=$1 && shift && exec snakemake --directory "$d" "$@"'
    argv = ["sh", "-c", script, "sh", os.path.join(directory, "run-{i}"),
            "--snakefile", os.path.join(directory, "Snakefile"), "--cores", str(ctx.cores),
            "--scheduler", "greedy", "--config", f"n={n}", "--quiet"]
    return measure("workflow", label, "snakemake",
                   lambda: ctx.time(argv, reps, warmup=0, timeout=ctx.args.big_timeout)["times"],
                   steps=n, shape=shape, note="local, no containers, --scheduler greedy")


def cwltool_workflow(ctx, label, shape, n, reps):
    if not have("cwltool"):
        return skipped("workflow", label, "cwltool", "cwltool is not installed")
    directory = wf_dir(ctx, "cwltool", label)
    make = workloads.cwl_fanout if shape == "fanout" else workloads.cwl_chain
    wf, job = make(directory, n)
    ctx.give_to_user(directory)
    tmp = ctx.path("wf", "cwltool", "tmp")
    ctx.give_to_user(tmp)
    argv = ["cwltool", "--no-container", "--quiet", "--no-compute-checksum", "--parallel",
            "--outdir", os.path.join(directory, "out-{i}"), "--tmpdir-prefix", tmp + "/",
            "--tmp-outdir-prefix", tmp + "/", wf, job]
    return measure("workflow", label, "cwltool",
                   lambda: ctx.time(argv, reps, warmup=0, timeout=ctx.args.big_timeout)["times"],
                   steps=n, shape=shape,
                   note="--no-container --parallel --no-compute-checksum")


def seal_plan(ctx, big):
    """Load + plan (`seal validate`) of the big fan-out: seal's own work before any container."""
    pipeline = os.path.join(wf_dir(ctx, "seal", f"fan-out {big}"), "p.yaml")
    return measure("workflow", f"seal validate, fan-out {big} (load + plan)", "seal",
                   lambda: ctx.time([ctx.seal, "validate", pipeline], ctx.args.reps,
                                    warmup=1)["times"], steps=big, shape="plan")


# --- 3. compute overhead ------------------------------------------------------

CPU_JOB = "busybox sha256sum {file} >/dev/null"
STREAM_JOB = ("for k in 1 2 3 4; do busybox dd if={file} bs=64k 2>/dev/null"
              " | busybox dd of=/dev/null bs=64k 2>/dev/null; done")


def compute(ctx):
    rootfs = ctx.path("compute", "rootfs")
    workloads.busybox_rootfs(rootfs)
    data = ctx.path("compute", "data")
    size = (16 if ctx.quick else 512) << 20
    big = os.path.join(data, "big.bin")
    with open("/dev/urandom", "rb") as src, open(big, "wb") as dst:
        for _ in range(size >> 20):
            dst.write(src.read(1 << 20))
    ctx.give_to_user(ctx.path("compute"))
    out = []
    for name, job in (("CPU: busybox sha256sum", CPU_JOB),
                      ("stream: busybox dd | dd, 4 passes", STREAM_JOB)):
        bare, inside = compare_job(ctx, rootfs, data, name, job)
        out += [bare, inside]
    return out


def compare_job(ctx, rootfs, data, name, job):
    """Runs `job` bare and in seal's container, alternating, and returns both results."""
    spec = os.path.join(ctx.work, "compute", "spec.json")
    workloads.container_spec(spec, rootfs, ctx.path("compute", "sandbox"),
                             ctx.path("compute", "logs"),
                             ["/bin/busybox", "sh", "-c", job.format(file="/data/big.bin")],
                             data_dir=data)
    ctx.give_to_user(ctx.path("compute"))
    print(f"   compute: {name}", file=sys.stderr, flush=True)
    bare_argv = ["/bin/busybox", "sh", "-c", job.format(file=os.path.join(data, "big.bin"))]
    bare = {"times": [], "cpu": []}
    inside = {"times": [], "cpu": []}
    try:
        for _ in range(ctx.args.reps):
            timed = ctx.time(bare_argv, 1, warmup=0)
            bare["times"] += timed["times"]
            bare["cpu"].append(timed["user"][0] + timed["sys"][0])
            done = ctx.capture([ctx.seal, "__container", "--run-spec", spec])
            outcome = json.loads(done.stdout)
            if outcome["termination"] != {"kind": "exited", "code": 0}:
                raise Failure(f"the job in seal's container ended {outcome['termination']}")
            inside["times"].append(seconds(outcome["wall"]))
            inside["cpu"].append(seconds(outcome["user_cpu"]) + seconds(outcome["system_cpu"]))
    except Failure as err:
        failed = result("compute", name, "seal", status="failed", reason=str(err))
        return result("compute", name, "bare", bare["times"], cpu=bare["cpu"]), failed
    return (result("compute", name, "bare", bare["times"], cpu=bare["cpu"]),
            result("compute", name, "seal", inside["times"], cpu=inside["cpu"],
                   note="container wall from seal's outcome (init to exit)"))


def seconds(duration):
    return duration["secs"] + duration["nanos"] / 1e9


# --- 4. image unpack ------------------------------------------------------------


def unpack(ctx):
    layout = ctx.path("unpack", "layout")
    size = (8 if ctx.quick else 100) << 20
    image = workloads.oci_image(layout, size)
    ctx.notes.append(
        f"unpack image: {image['files']} files from /usr/lib, "
        f"{image['uncompressed_bytes'] / 1e6:.1f} MB in 3 gzip layers of "
        f"{image['compressed_bytes'] / 1e6:.1f} MB")
    ctx.give_to_user(ctx.path("unpack"))
    targets = ctx.path("unpack", "targets")
    ctx.give_to_user(targets)
    probe = os.path.relpath(workloads.library_files(size)[0][0], "/")
    reps = ctx.args.reps
    seal_argv = ["env", f"SEAL_HOME={targets}/seal-{{i}}", ctx.seal, "image", "prepare",
                 f"oci:{layout}@{image['manifest_digest']}"]
    out = [measure("unpack", "seal image prepare (fresh store)", "seal",
                   lambda: checked_unpack(ctx, seal_argv, reps, f"{targets}/seal-*/rootfs/*",
                                          probe),
                   note="copies blobs into the store, verifies every digest, unpacks",
                   image=image_summary(image))]
    if have("umoci"):
        argv = ["umoci", "unpack", "--rootless", "--image", f"{layout}:{image['tag']}",
                f"{targets}/umoci-{{i}}"]
        out.append(measure("unpack", "umoci unpack --rootless", "umoci",
                           lambda: checked_unpack(ctx, argv, reps,
                                                  f"{targets}/umoci-*/rootfs", probe),
                           note="also writes an mtree manifest of the tree"))
    else:
        out.append(skipped("unpack", "umoci unpack --rootless", "umoci", "umoci not installed"))
    script = ('mkdir "$1" && d=$1 && shift && for l in "$@"; do zcat "$l" | tar -x -C "$d"; '
              'done')
    limit = ["sh", "-c", script, "sh", f"{targets}/limit-{{i}}", *image["layers"]]
    out.append(measure("unpack", "zcat | tar -x, layer by layer (limit)", "limit",
                       lambda: checked_unpack(ctx, limit, reps, f"{targets}/limit-*", probe)))
    return out


def checked_unpack(ctx, argv, reps, pattern, probe):
    """Times the unpack, then checks that every tree made holds a known file."""
    times = ctx.time(argv, reps, warmup=0)["times"]
    trees = glob.glob(pattern)
    if len(trees) < reps or not all(os.path.isfile(os.path.join(t, probe)) for t in trees):
        raise Failure(f"the unpacked trees ({pattern}) lack {probe}")
    return times


def image_summary(image):
    return {k: v for k, v in image.items() if k != "layers"}


# --- clean-up ---------------------------------------------------------------------


def cleanup(ctx):
    """Removes what the peers left outside the work directory's plain files."""
    if getattr(ctx, "podman", None):
        subprocess.run(ctx.podman + ["rmi", "--all", "--force"], capture_output=True)
        subprocess.run(ctx.podman + ["system", "reset", "--force"], capture_output=True)
    with open("/proc/self/mounts") as f:
        mounts = [line.split()[1] for line in f if ctx.work in line.split()[1]]
    for mount in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)


# --- the report ---------------------------------------------------------------------

from render import markdown, plots  # noqa: E402,F401
