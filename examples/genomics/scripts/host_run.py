#!/usr/bin/env python3
"""Run pipeline.yaml on the host, step by step, with seal's step semantics.

A stand-in for `seal run` used by scripts/prototype.sh to prove the biology
before seal can run the example: it executes exactly the `run:` commands of
pipeline.yaml, with the host's tools instead of the images. What it keeps of
seal's semantics:

- each step instance runs in a fresh directory holding only its declared
  inputs, made read-only, at their relative paths (files of the pipeline
  folder at their path relative to pipeline.yaml, other steps' outputs at
  their output paths);
- `run:` is `/bin/sh -c`, with PATH reduced to /usr/bin:/bin;
- declared outputs (paths or globs) are collected after exit 0 into one flat
  results directory, and two instances may not publish the same path;
- `${params.x}`, `${item}`, `${item.f}`, `${inputs.n}`, `${outputs.n}` and
  `${steps.S.outputs.O}` are substituted (lists as shell-quoted words);
  `$${` escapes; a foreach step reading a foreach step's output over the
  same list gets the matching item's files, any other step gets all of them.

With --images BUILD (the output folder of images/build.sh), each step runs
in its image's root file system instead of on the host: the root bound
read-only, the step's directory bound at /tmp and made the working
directory, a fresh /proc, a minimal /dev, no network, entered with chroot inside an
unprivileged user namespace (unshare). Close to what seal will do, minus
seal's own runtime.

What it does not do: OCI images, caching, parallelism, resources.
Needs python3-yaml.

usage: host_run.py [--images BUILD] PIPELINE.yaml WORKDIR
"""

import glob
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time

import yaml

REF = re.compile(r"\$(\$?)\{([^}]*)\}")
STEP_REF = re.compile(r"\$\{steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)\}")


def fail(message):
    sys.exit(f"host_run: {message}")


def lookup(path, scope):
    value = scope
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise KeyError(path)
    return value


def render(value):
    if isinstance(value, list):
        return " ".join(shlex.quote(str(v)) for v in value)
    if isinstance(value, dict):
        fail(f"cannot substitute a map: {value}")
    return str(value)


def substitute(text, scope, quote=False):
    def replace(match):
        if match.group(1):
            return "${" + match.group(2) + "}"
        try:
            value = lookup(match.group(2), scope)
        except KeyError:
            fail(f"unknown reference ${{{match.group(2)}}} in: {text}")
        if quote and not isinstance(value, list):
            return shlex.quote(str(value))
        return render(value)

    return REF.sub(replace, str(text))


def step_order(steps):
    """Steps in an order where every step follows the steps it reads from."""
    deps = {}
    for name, step in steps.items():
        refs = set()
        for value in (step.get("inputs") or {}).values():
            refs |= {m.group(1) for m in STEP_REF.finditer(str(value))}
        refs |= set(step.get("after") or [])
        unknown = refs - set(steps)
        if unknown:
            fail(f"step {name} refers to unknown steps {sorted(unknown)}")
        deps[name] = refs
    order, done = [], set()
    while len(order) < len(steps):
        ready = [n for n in steps if n not in done and deps[n] <= done]
        if not ready:
            fail(f"cycle among steps {sorted(set(steps) - done)}")
        order.append(ready[0])
        done.add(ready[0])
    return order


class Runner:
    def __init__(self, pipeline_path, workdir, images=None):
        self.images = os.path.abspath(images) if images else None
        with open(pipeline_path, encoding="utf-8") as handle:
            self.doc = yaml.safe_load(handle)
        self.base = os.path.dirname(os.path.abspath(pipeline_path))
        self.work = os.path.abspath(workdir)
        self.results = os.path.join(self.work, "results")
        os.makedirs(self.results, exist_ok=True)
        self.params = self.doc.get("params") or {}
        # published[step][item_key][output] -> list of file names
        self.published = {}
        self.timings = []

    def items(self, step):
        if "foreach" not in step:
            return [None]
        items = lookup(step["foreach"].strip()[2:-1], {"params": self.params})
        if not isinstance(items, list):
            fail(f"foreach must name a list: {step['foreach']}")
        return items

    @staticmethod
    def item_key(item):
        if item is None:
            return None
        return item["id"] if isinstance(item, dict) else str(item)

    def step_files(self, consumer_foreach, item, step_name, output):
        instances = self.published[step_name]
        if consumer_foreach and self.item_key(item) in instances:
            return list(instances[self.item_key(item)][output])
        return [f for key in instances for f in instances[key][output]]

    def resolve_inputs(self, step, item):
        """input name -> (list of relative paths, list of (source, dest))."""
        resolved = {}
        scope = {"params": self.params, "item": item}
        for name, spec in (step.get("inputs") or {}).items():
            spec = str(spec)
            match = STEP_REF.fullmatch(spec.strip())
            if match:
                files = self.step_files("foreach" in step, item, match.group(1), match.group(2))
                resolved[name] = [(f, os.path.join(self.results, f)) for f in files]
            else:
                rel = substitute(spec, scope)
                paths = sorted(glob.glob(os.path.join(self.base, rel))) or fail(
                    f"input {name} = {rel} matches no file")
                resolved[name] = [(os.path.relpath(p, self.base), p) for p in paths]
        return resolved

    def run_instance(self, name, step, item):
        key = self.item_key(item)
        sandbox = os.path.join(self.work, "steps", name if key is None else f"{name}.{key}")
        shutil.rmtree(sandbox, ignore_errors=True)
        os.makedirs(sandbox)
        inputs = self.resolve_inputs(step, item)
        for pairs in inputs.values():
            for rel, src in pairs:
                dest = os.path.join(sandbox, rel)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                shutil.copyfile(src, dest)
                os.chmod(dest, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        scope = {"params": self.params, "item": item,
                 "inputs": {n: [rel for rel, _ in p] for n, p in inputs.items()}}
        outputs = {n: substitute(v, scope) for n, v in (step.get("outputs") or {}).items()}
        scope["outputs"] = outputs
        command = substitute(step["run"], scope)
        env = {"PATH": "/usr/bin:/bin", "HOME": sandbox, "LC_ALL": "C", "TMPDIR": sandbox}
        env.update({k: str(v) for k, v in (step.get("env") or {}).items()})
        argv = ["/bin/sh", "-c", command]
        if self.images:
            argv, env = self.in_image(step["image"], sandbox, command, env)
        started = time.monotonic()
        with open(os.path.join(sandbox, ".stdout"), "wb") as out, \
                open(os.path.join(sandbox, ".stderr"), "wb") as err:
            code = subprocess.call(argv, cwd=sandbox, env=env, stdout=out, stderr=err)
        elapsed = time.monotonic() - started
        label = name if key is None else f"{name}[{key}]"
        if code != 0:
            with open(os.path.join(sandbox, ".stderr"), encoding="utf-8",
                      errors="replace") as handle:
                tail = handle.read()[-3000:]
            sys.stdout.write(tail)
            fail(f"step {label} exited {code}; sandbox kept at {sandbox}\ncommand: {command}")
        self.publish(name, key, label, sandbox, outputs)
        self.timings.append((label, elapsed))
        print(f"  {label:<24} {elapsed:6.2f} s", file=sys.stderr)

    def in_image(self, image, sandbox, command, env):
        """argv and environment that run `command` in the image's root."""
        root = os.path.join(self.images, image, "rootfs")
        if not os.path.isfile(os.path.join(root, "bin", "sh")) and not os.path.islink(
                os.path.join(root, "bin", "sh")):
            fail(f"no image root {root}: run images/build.sh {image}")
        inner_env = {k: v for k, v in env.items() if k not in ("HOME", "TMPDIR")}
        inner_env.update({"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
                          "HOME": "/tmp", "TMPDIR": "/tmp"})
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(inner_env.items()))
        setup = (
            f"mount --bind {shlex.quote(root)} {shlex.quote(root)}"
            f" && mount -o remount,bind,ro {shlex.quote(root)}"
            f" && mount --bind {shlex.quote(sandbox)} {shlex.quote(root)}/tmp"
            f" && mount -t proc proc {shlex.quote(root)}/proc"
            f" && mount -t tmpfs -o mode=755 tmpfs {shlex.quote(root)}/dev"
            f" && for d in null zero full random urandom; do touch {shlex.quote(root)}/dev/$d"
            f" && mount --bind /dev/$d {shlex.quote(root)}/dev/$d || exit 1; done"
            f" && exec chroot {shlex.quote(root)} /usr/bin/env -i {exports}"
            f" /bin/sh -c {shlex.quote('cd /tmp && ' + command)}"
        )
        argv = ["unshare", "--user", "--map-root-user", "--mount", "--pid", "--net", "--fork",
                "/bin/sh", "-c", setup]
        return argv, {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}

    def publish(self, name, key, label, sandbox, outputs):
        published = {}
        for out_name, pattern in outputs.items():
            files = sorted(os.path.relpath(p, sandbox)
                           for p in glob.glob(os.path.join(sandbox, pattern)))
            if not files:
                fail(f"step {label}: output {out_name} = {pattern} matched no file")
            for f in files:
                dest = os.path.join(self.results, f)
                if os.path.exists(dest):
                    fail(f"step {label}: output {f} already published by another step")
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                shutil.copyfile(os.path.join(sandbox, f), dest)
            published[out_name] = files
        self.published.setdefault(name, {})[key] = published

    def run(self):
        steps = self.doc["steps"]
        for name in step_order(steps):
            for item in self.items(steps[name]):
                self.run_instance(name, steps[name], item)
        total = sum(t for _, t in self.timings)
        print(f"  {'all steps (serial)':<24} {total:6.2f} s", file=sys.stderr)


def main():
    args = sys.argv[1:]
    images = None
    if len(args) == 4 and args[0] == "--images":
        images, args = args[1], args[2:]
    if len(args) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    Runner(args[0], args[1], images).run()


if __name__ == "__main__":
    main()
