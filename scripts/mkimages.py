#!/usr/bin/env python3
"""Build small, real OCI test images from Debian's static busybox.

Usage: python3 scripts/mkimages.py OUTDIR

Everything is deterministic: fixed mtimes, uid/gid 0, sorted tar entries,
gzip headers without name or timestamp, canonical JSON. Re-running the script
(on the same host, with the same busybox and zstd) yields identical digests.

Outputs (see the summary printed at the end, and OUTDIR/digests.json):
  single/            OCI layout, one gzip layer (busybox + applet links, plus
                     the small lower-layer fixtures that multi builds on)
  multi/             OCI layout, 3 layers (gzip, gzip with whiteouts, zstd);
                     layer 1 is byte-identical to single's layer
  multiarch/         OCI layout whose ref points to an image index with a
                     host-arch manifest and one for a foreign arch
  docker-save.tar    `single` in legacy `docker save` format, tag dsave:1
  single.oci.tar     OCI archive (the single layout, tarred at its root)
  rootfs/ rootfs.tar plain root filesystem (same content as single's layer)
  hostile/<name>/    OCI layouts with malicious layers (correct digests, so
                     only the unpacker can catch them) plus `tampered`, whose
                     layer blob no longer matches its digest
  digests.json       machine-readable digests of all of the above

Python 3 standard library only, plus the `zstd` CLI for one layer.
"""

import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile

BUSYBOX = "/bin/busybox"
# 2026-01-01T00:00:00Z: every mtime and `created` field uses this instant.
EPOCH = 1767225600
CREATED = "2026-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

APPLETS = [
    "cat", "date", "echo", "env", "false", "grep", "head", "hostname",
    "httpd", "id", "kill", "ls", "mkdir", "nc", "ps", "rm", "sh", "sleep",
    "tail", "test", "top", "touch", "true", "uname", "wc", "wget",
]

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
REF_NAME = "org.opencontainers.image.ref.name"

GO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def host_arch():
    machine = platform.machine().lower()
    if machine not in GO_ARCH:
        sys.exit(f"mkimages: unsupported host architecture {machine!r}")
    return GO_ARCH[machine]


HOST_ARCH = host_arch()
OTHER_ARCH = "arm64" if HOST_ARCH == "amd64" else "amd64"


# ---------------------------------------------------------------- tar entries

def d(path, mode=0o755):
    return {"path": path, "type": "dir", "mode": mode}


def f(path, data, mode=0o644):
    if isinstance(data, str):
        data = data.encode()
    return {"path": path, "type": "file", "mode": mode, "data": data}


def sym(path, target):
    return {"path": path, "type": "symlink", "mode": 0o777, "link": target}


def hardlink(path, target):
    return {"path": path, "type": "hardlink", "mode": 0o644, "link": target}


def chardev(path, major, minor):
    return {"path": path, "type": "chr", "mode": 0o666, "major": major, "minor": minor}


def base_entries():
    """The busybox root filesystem: single's only layer, multi's first."""
    with open(BUSYBOX, "rb") as fh:
        busybox = fh.read()
    entries = [
        d("bin"),
        f("bin/busybox", busybox, 0o755),
        d("dev"),
        d("etc"),
        f("etc/passwd",
          "root:x:0:0:root:/root:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
        f("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        # Lower-layer fixtures for `multi`, whose first layer must be this
        # very layer: layer 2 overrides motd, whites out deleteme and makes
        # var/cache/app opaque; opt/keep/a must survive untouched.
        f("etc/motd", "base motd\n"),
        f("etc/deleteme", "to be whited out\n"),
        d("opt"),
        d("opt/keep"),
        f("opt/keep/a", "a\n"),
        d("var"),
        d("var/cache"),
        d("var/cache/app"),
        f("var/cache/app/old1", "old1\n"),
        f("var/cache/app/old2", "old2\n"),
        d("proc", 0o555),
        d("root", 0o700),
        d("sys", 0o555),
        d("tmp", 0o1777),
    ]
    entries += [sym(f"bin/{name}", "busybox") for name in APPLETS]
    return entries


def tar_bytes(entries, sort=True):
    """Serialise entries as an uncompressed tar.

    Hostile layers pass sort=False because the entry order is the attack
    (a symlink first, then a file through it). Names are written verbatim,
    so a leading "/" or ".." survives into the header.
    """
    if sort:
        entries = sorted(entries, key=lambda e: e["path"])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            ti = tarfile.TarInfo(e["path"])
            ti.name = e["path"]  # set directly: tarfile.add() would strip "/"
            ti.mode = e["mode"]
            ti.mtime = EPOCH
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            data = None
            kind = e["type"]
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "file":
                ti.type = tarfile.REGTYPE
                ti.size = len(e["data"])
                data = io.BytesIO(e["data"])
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e["link"]
            elif kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e["link"]
            elif kind == "chr":
                ti.type = tarfile.CHRTYPE
                ti.devmajor, ti.devminor = e["major"], e["minor"]
            else:
                raise ValueError(kind)
            tar.addfile(ti, data)
    return buf.getvalue()


def gzip_bytes(data):
    buf = io.BytesIO()
    # filename="" and mtime=0 keep the gzip header free of varying fields.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0,
                       compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def zstd_bytes(data):
    # Single-threaded at a fixed level so the frame is reproducible.
    return subprocess.run(["zstd", "-q", "-c", "-3", "-T1"], input=data,
                          stdout=subprocess.PIPE, check=True).stdout


def pseudo_random(n, seed=b"berth"):
    """Deterministic incompressible bytes (SHA-256 in counter mode)."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:n])


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


# ---------------------------------------------------------------- layouts

class Layer:
    """An uncompressed tar plus its compressed form."""

    def __init__(self, tar, compression="gzip", comment=""):
        self.tar = tar
        self.diff_id = sha256(tar)
        if compression == "gzip":
            self.blob, self.media_type = gzip_bytes(tar), MT_LAYER_GZIP
        elif compression == "zstd":
            self.blob, self.media_type = zstd_bytes(tar), MT_LAYER_ZSTD
        else:
            raise ValueError(compression)
        self.digest = sha256(self.blob)
        self.comment = comment


class Layout:
    """An OCI image layout held in memory until write()."""

    def __init__(self):
        self.blobs = {}  # digest -> bytes
        self.refs = []   # index.json descriptors

    def add_blob(self, data, media_type):
        digest = sha256(data)
        self.blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def add_image(self, layers, arch=HOST_ARCH):
        """Store layers, config and manifest; return (manifest desc, config bytes)."""
        config = {
            "created": CREATED,
            "author": "berth scripts/mkimages.py",
            "architecture": arch,
            "os": "linux",
            "config": {"Env": [PATH_ENV], "Cmd": ["/bin/sh"], "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
            "history": [{"created": CREATED, "created_by": f"mkimages.py: {l.comment}"}
                        for l in layers],
        }
        config_bytes = canonical_json(config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": self.add_blob(config_bytes, MT_CONFIG),
            "layers": [self.add_blob(l.blob, l.media_type) for l in layers],
        }
        desc = self.add_blob(canonical_json(manifest), MT_MANIFEST)
        desc["platform"] = {"architecture": arch, "os": "linux"}
        return desc, config_bytes

    def add_ref(self, desc, name):
        desc = dict(desc)
        desc["annotations"] = {REF_NAME: name}
        self.refs.append(desc)

    def files(self):
        """(relative path, bytes or None for a directory), in sorted order."""
        index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": self.refs}
        out = [
            ("blobs", None),
            ("blobs/sha256", None),
            ("index.json", canonical_json(index)),
            ("oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"})),
        ]
        for digest in sorted(self.blobs):
            out.append((f"blobs/sha256/{digest.split(':', 1)[1]}", self.blobs[digest]))
        return sorted(out, key=lambda x: x[0])

    def write(self, path):
        os.makedirs(path)
        for rel, data in self.files():
            target = os.path.join(path, rel)
            if data is None:
                os.makedirs(target, exist_ok=True)
            else:
                with open(target, "wb") as fh:
                    fh.write(data)

    def archive(self):
        """The layout as an OCI archive (plain tar, layout at the root)."""
        entries = [d(rel) if data is None else f(rel, data) for rel, data in self.files()]
        return tar_bytes(entries)


def write_file(path, data):
    with open(path, "wb") as fh:
        fh.write(data)


def write_rootfs(path, entries):
    """Materialise tar entries as a directory tree (no hostile entries here)."""
    os.makedirs(path)
    for e in sorted(entries, key=lambda e: e["path"]):
        target = os.path.join(path, e["path"])
        if e["type"] == "dir":
            os.makedirs(target, exist_ok=True)
        elif e["type"] == "file":
            write_file(target, e["data"])
        elif e["type"] == "symlink":
            os.symlink(e["link"], target)
        else:
            raise ValueError(e["type"])
        if e["type"] != "symlink":
            os.chmod(target, e["mode"])
    # mtimes last, deepest first, so creating children does not bump them.
    for e in sorted(entries, key=lambda e: e["path"], reverse=True):
        os.utime(os.path.join(path, e["path"]), (EPOCH, EPOCH), follow_symlinks=False)
    os.utime(path, (EPOCH, EPOCH))


def docker_save(layers, config_bytes, tag):
    """Legacy `docker save` tarball: manifest.json, config, <id>/layer.tar."""
    repo, version = tag.rsplit(":", 1)
    entries, layer_paths, ids = [], [], []
    for layer in layers:
        layer_id = layer.diff_id.split(":", 1)[1]
        ids.append(layer_id)
        layer_paths.append(f"{layer_id}/layer.tar")
        legacy_json = {"id": layer_id, "created": CREATED, "os": "linux"}
        if len(ids) > 1:
            legacy_json["parent"] = ids[-2]
        entries += [
            d(layer_id),
            f(f"{layer_id}/VERSION", "1.0"),
            f(f"{layer_id}/json", canonical_json(legacy_json)),
            f(f"{layer_id}/layer.tar", layer.tar),
        ]
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": layer_paths}]
    entries += [
        f(config_name, config_bytes),
        f("manifest.json", canonical_json(manifest)),
        f("repositories", canonical_json({repo: {version: ids[-1]}})),
    ]
    return tar_bytes(entries)


# ---------------------------------------------------------------- main

def main():
    if len(sys.argv) != 2:
        sys.exit("usage: mkimages.py OUTDIR")
    out = os.path.abspath(sys.argv[1])
    os.makedirs(out, exist_ok=True)
    # Remove only what this script creates, so OUTDIR may hold other things.
    for name in ["single", "multi", "multiarch", "rootfs", "hostile",
                 "docker-save.tar", "single.oci.tar", "rootfs.tar", "digests.json"]:
        p = os.path.join(out, name)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        elif os.path.lexists(p):
            os.unlink(p)

    summary = {}  # name -> {"ref", "manifest", "config", "layers", "diff_ids"}

    def record(name, desc, layers, config_bytes, **extra):
        summary[name] = {
            "ref": name,
            "manifest": desc["digest"],
            "config": sha256(config_bytes),
            "layers": [l.digest for l in layers],
            "diff_ids": [l.diff_id for l in layers],
            **extra,
        }

    base = base_entries()
    base_layer = Layer(tar_bytes(base), comment="busybox base")

    # single
    single = Layout()
    single_desc, single_config = single.add_image([base_layer])
    single.add_ref(single_desc, "single")
    single.write(os.path.join(out, "single"))
    record("single", single_desc, [base_layer], single_config)

    # multi: layer 1 is single's layer byte for byte (so the blob is shared
    # and disk-usage sharing can be tested); the files layer 2 whites out or
    # overrides therefore come from base_entries().
    multi_l2 = Layer(tar_bytes([
        d("etc"),
        f("etc/.wh.deleteme", b""),
        f("etc/motd", "layer2 motd\n"),
        d("var"),
        d("var/cache"),
        d("var/cache/app"),
        f("var/cache/app/.wh..wh..opq", b""),
        f("var/cache/app/new", "new\n"),
    ]), comment="whiteout, opaque dir, override")
    multi_l3 = Layer(tar_bytes([
        d("opt"),
        f("opt/blob.bin", pseudo_random(1 << 20)),
        f("opt/layer3", "layer3\n"),
    ]), compression="zstd", comment="zstd layer with 1 MiB blob")
    multi_layers = [base_layer, multi_l2, multi_l3]
    multi = Layout()
    multi_desc, multi_config = multi.add_image(multi_layers)
    multi.add_ref(multi_desc, "multi")
    multi.write(os.path.join(out, "multi"))
    record("multi", multi_desc, multi_layers, multi_config)

    # multiarch: an index with the host manifest (identical to single's) and
    # a foreign-arch manifest whose layer says which arch it is.
    multiarch = Layout()
    host_desc, _ = multiarch.add_image([base_layer])
    other_layer = Layer(tar_bytes(base + [f("etc/arch", OTHER_ARCH + "\n")]),
                        comment=f"busybox base for {OTHER_ARCH}")
    other_desc, other_config = multiarch.add_image([other_layer], arch=OTHER_ARCH)
    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [host_desc, other_desc]}
    index_desc = multiarch.add_blob(canonical_json(index), MT_INDEX)
    multiarch.add_ref(index_desc, "multiarch")
    multiarch.write(os.path.join(out, "multiarch"))
    summary["multiarch"] = {
        "ref": "multiarch",
        "index": index_desc["digest"],
        "manifests": {HOST_ARCH: host_desc["digest"], OTHER_ARCH: other_desc["digest"]},
        "foreign_arch": OTHER_ARCH,
        "foreign_layers": [other_layer.digest],
        "foreign_config": sha256(other_config),
    }

    # docker save, OCI archive, plain rootfs
    write_file(os.path.join(out, "docker-save.tar"),
               docker_save([base_layer], single_config, "dsave:1"))
    record("docker-save", single_desc, [base_layer], single_config, tag="dsave:1")
    write_file(os.path.join(out, "single.oci.tar"), single.archive())
    write_rootfs(os.path.join(out, "rootfs"), base)
    write_file(os.path.join(out, "rootfs.tar"), base_layer.tar)

    # hostile layers: valid images whose contents the unpacker must refuse.
    hostile = {
        "escape-dotdot": [f("../../escaped", "escaped via ..\n")],
        "escape-abs": [f("/etc/escaped-abs", "escaped via absolute path\n")],
        "symlink-through": [sym("evil", "/tmp"), f("evil/pwned", "pwned\n")],
        "hardlink-out": [hardlink("passwd-link", "../../etc/passwd")],
        "device": [d("dev"), chardev("dev/evil", 1, 1)],
        "bomb": [f("bomb.bin", bytes(64 << 20))],
    }
    for name, entries in hostile.items():
        layer = Layer(tar_bytes(entries, sort=False), comment=f"hostile: {name}")
        layout = Layout()
        desc, config = layout.add_image([layer])
        layout.add_ref(desc, name)
        layout.write(os.path.join(out, "hostile", name))
        record(f"hostile/{name}", desc, [layer], config)

    # tampered: single with one byte of the layer blob changed. The byte is
    # the gzip header's OS field, so the blob still decompresses to the very
    # same tar (diff_id matches); only the compressed digest check fails.
    tampered = Layout()
    tampered_desc, _ = tampered.add_image([base_layer])
    tampered.add_ref(tampered_desc, "tampered")
    blob = bytearray(tampered.blobs[base_layer.digest])
    assert blob[:2] == b"\x1f\x8b", "not gzip"
    blob[9] ^= 0x01
    tampered.blobs[base_layer.digest] = bytes(blob)
    tampered.write(os.path.join(out, "hostile", "tampered"))
    record("hostile/tampered", tampered_desc, [base_layer], single_config,
           actual_layer_digest=sha256(bytes(blob)))

    write_file(os.path.join(out, "digests.json"),
               json.dumps(summary, indent=2, sort_keys=True).encode() + b"\n")

    width = max(len(n) for n in summary)
    for name, info in summary.items():
        digest = info.get("manifest") or info["index"]
        print(f"{name:<{width}}  {digest}")


if __name__ == "__main__":
    main()
