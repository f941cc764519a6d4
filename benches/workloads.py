"""The inputs of the benchmarks: a busybox root file system, seal pipelines,
Snakefiles and CWL workflows of the same shapes, container specs and a
multi-layer OCI image built from local files.

Every generator writes into a directory it is given and returns paths; none
of them runs anything but Python and busybox's applet list.
"""

import gzip
import hashlib
import io
import json
import os
import platform
import subprocess
import tarfile

BUSYBOX = "/bin/busybox"


def busybox_rootfs(root):
    """A minimal root file system: static busybox, its applets, a passwd."""
    for name in ["bin", "etc", "root", "tmp", "work", "proc", "dev", "sys", "data"]:
        os.makedirs(os.path.join(root, name), exist_ok=True)
    target = os.path.join(root, "bin", "busybox")
    with open(BUSYBOX, "rb") as src, open(target, "wb") as dst:
        dst.write(src.read())
    os.chmod(target, 0o755)
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True)
    for applet in applets.stdout.split():
        if applet != "busybox":
            os.symlink("busybox", os.path.join(root, "bin", applet))
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    with open(os.path.join(root, "etc", "group"), "w") as f:
        f.write("root:x:0:\n")


def container_spec(path, rootfs, sandbox, logs, argv, data_dir=None):
    """A spec for `seal __container --run-spec`, shaped like one of seal run's steps."""
    mounts = [{"source": sandbox, "target": "/work", "readonly": False}]
    if data_dir:
        mounts.append({"source": data_dir, "target": "/data", "readonly": True})
    spec = {
        "rootfs": rootfs,
        "argv": argv,
        "env": ["PATH=/bin", "HOME=/root"],
        "cwd": "/work",
        "uid": 0,
        "gid": 0,
        "hostname": "step",
        "mounts": mounts,
        "tmpfs": ["/tmp"],
        "network": False,
        "limits": {"memory_bytes": None, "time": None, "cpus": None},
        "stdout": os.path.join(logs, "stdout"),
        "stderr": os.path.join(logs, "stderr"),
    }
    with open(path, "w") as f:
        json.dump(spec, f, indent=1)


# --- seal pipelines -------------------------------------------------------


def _seal_header(name, image):
    return f"seal: 1\nname: {name}\nimages:\n  bb: {image}\n"


def seal_one_step(path, image):
    """One step that runs /bin/true and writes nothing: pure start-up cost."""
    text = _seal_header("one", image) + (
        "steps:\n  t:\n    image: bb\n    argv: [/bin/true]\n"
    )
    _write(path, text)


def seal_fanout(path, image, n):
    """n independent instances of one step (`foreach`), each writing a file."""
    items = ", ".join(f"i{k:05d}" for k in range(n))
    text = (
        f"seal: 1\nname: fan{n}\nparams:\n  items: [{items}]\n"
        f"images:\n  bb: {image}\n"
        "steps:\n  w:\n    foreach: ${params.items}\n    image: bb\n"
        '    outputs: { o: "w/${item}.txt" }\n'
        "    run: mkdir -p w && echo ${item} > ${outputs.o}\n"
    )
    _write(path, text)


def seal_chain(path, image, n):
    """n steps, each reading the previous one's output."""
    lines = [_seal_header(f"chain{n}", image), "steps:\n"]
    for k in range(n):
        lines.append(f"  c{k:04d}:\n    image: bb\n")
        if k:
            lines.append(f'    inputs: {{ prev: "${{steps.c{k - 1:04d}.outputs.o}}" }}\n')
        lines.append(f"    outputs: {{ o: c{k:04d}.txt }}\n")
        lines.append(f"    run: echo {k} > ${{outputs.o}}\n")
    _write(path, "".join(lines))


# --- Snakemake ------------------------------------------------------------

SNAKE_FANOUT = """N = int(config["n"])

rule all:
    input: expand("w/i{k:05d}.txt", k=range(N))

rule w:
    output: "w/{item}.txt"
    shell: "echo {wildcards.item} > {output}"
"""

SNAKE_CHAIN = """N = int(config["n"])

def previous(wildcards):
    k = int(wildcards.k)
    return [] if k == 0 else [f"c{k - 1:04d}.txt"]

rule all:
    input: f"c{N - 1:04d}.txt"

rule c:
    input: previous
    output: "c{k}.txt"
    shell: "echo {wildcards.k} > {output}"
"""


def snakefile(path, shape):
    _write(path, SNAKE_FANOUT if shape == "fanout" else SNAKE_CHAIN)


# --- CWL ------------------------------------------------------------------

CWL_ECHO = """cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
inputs:
  i: { type: string, inputBinding: { position: 1 } }
  prev: { type: "File?" }
stdout: out.txt
outputs:
  o: { type: stdout }
"""

CWL_SCATTER = """cwlVersion: v1.2
class: Workflow
requirements: { ScatterFeatureRequirement: {} }
inputs:
  items: string[]
outputs:
  o: { type: "File[]", outputSource: w/o }
steps:
  w: { run: echo.cwl, scatter: i, in: { i: items }, out: [o] }
"""


def cwl_fanout(directory, n):
    """A scatter over n items; returns (workflow, job file)."""
    _write(os.path.join(directory, "echo.cwl"), CWL_ECHO)
    _write(os.path.join(directory, "wf.cwl"), CWL_SCATTER)
    items = [f"i{k:05d}" for k in range(n)]
    _write(os.path.join(directory, "job.json"), json.dumps({"items": items}))
    return os.path.join(directory, "wf.cwl"), os.path.join(directory, "job.json")


def cwl_chain(directory, n):
    """n steps, each taking the previous one's output; returns (workflow, job file)."""
    _write(os.path.join(directory, "echo.cwl"), CWL_ECHO)
    lines = [
        "cwlVersion: v1.2\nclass: Workflow\ninputs: {}\n",
        f"outputs:\n  o: {{ type: File, outputSource: c{n - 1:04d}/o }}\nsteps:\n",
    ]
    for k in range(n):
        prev = f", prev: c{k - 1:04d}/o" if k else ""
        lines.append(
            f"  c{k:04d}: {{ run: echo.cwl, in: {{ i: {{ default: '{k}' }}{prev} }}, out: [o] }}\n"
        )
    _write(os.path.join(directory, "wf.cwl"), "".join(lines))
    _write(os.path.join(directory, "job.json"), "{}")
    return os.path.join(directory, "wf.cwl"), os.path.join(directory, "job.json")


# --- a multi-layer OCI image ----------------------------------------------


def library_files(limit_bytes, source="/usr/lib"):
    """Regular files below `source` in a stable order, up to `limit_bytes` in all."""
    chosen, total = [], 0
    for top, dirs, files in os.walk(source):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(top, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            if not os.access(path, os.R_OK):
                continue
            size = os.path.getsize(path)
            if total + size > limit_bytes:
                return chosen, total
            chosen.append(path)
            total += size
    return chosen, total


def _layer(paths, base):
    """A gzip-compressed tar of `paths` (stored relative to /); returns
    (compressed bytes, sha256 of the uncompressed tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        seen = set()
        for path in paths:
            relative = os.path.relpath(path, base)
            _add_parents(tar, base, relative, seen)
            info = tar.gettarinfo(path, arcname=relative)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            with open(path, "rb") as f:
                tar.addfile(info, f)
    data = raw.getvalue()
    return gzip.compress(data, compresslevel=6, mtime=0), hashlib.sha256(data).hexdigest()


def _add_parents(tar, base, relative, seen):
    parts = relative.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        directory = "/".join(parts[:depth])
        if directory in seen:
            continue
        seen.add(directory)
        info = tarfile.TarInfo(directory)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)


def oci_image(layout, total_bytes, layers=3, tag="bench"):
    """Writes an OCI image layout with `layers` gzip layers of local files
    adding up to about `total_bytes`; returns a description of it."""
    files, size = library_files(total_bytes)
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    groups = _split_by_size(files, layers)
    descriptors, diff_ids, layer_paths = [], [], []
    for group in groups:
        compressed, diff_id = _layer(group, "/")
        digest = _put_blob(blobs, compressed)
        layer_paths.append(os.path.join(blobs, digest))
        descriptors.append(_descriptor("application/vnd.oci.image.layer.v1.tar+gzip",
                                       digest, len(compressed)))
        diff_ids.append("sha256:" + diff_id)
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }, sort_keys=True).encode()
    config_digest = _put_blob(blobs, config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": _descriptor("application/vnd.oci.image.config.v1+json",
                              config_digest, len(config)),
        "layers": descriptors,
    }, sort_keys=True).encode()
    manifest_digest = _put_blob(blobs, manifest)
    entry = _descriptor("application/vnd.oci.image.manifest.v1+json",
                        manifest_digest, len(manifest))
    entry["platform"] = {"architecture": arch, "os": "linux"}
    entry["annotations"] = {"org.opencontainers.image.ref.name": tag}
    index = {"schemaVersion": 2, "manifests": [entry]}
    _write(os.path.join(layout, "index.json"), json.dumps(index))
    _write(os.path.join(layout, "oci-layout"), '{"imageLayoutVersion": "1.0.0"}')
    return {
        "manifest_digest": "sha256:" + manifest_digest,
        "tag": tag,
        "files": len(files),
        "uncompressed_bytes": size,
        "compressed_bytes": sum(os.path.getsize(p) for p in layer_paths),
        "layers": layer_paths,
    }


def _split_by_size(files, parts):
    total = sum(os.path.getsize(f) for f in files) or 1
    groups, current, acc = [[] for _ in range(parts)], 0, 0
    for path in files:
        groups[current].append(path)
        acc += os.path.getsize(path)
        if acc >= total * (current + 1) / parts and current < parts - 1:
            current += 1
    return groups


def _put_blob(blobs, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return digest


def _descriptor(media_type, digest, size):
    return {"mediaType": media_type, "digest": "sha256:" + digest, "size": size}


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
