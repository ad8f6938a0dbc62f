#!/usr/bin/env python3
"""Writes a multi-layer OCI image layout for bench/pull.sh.

Usage: mkbenchimage.py OUTDIR [LAYERS] [MIB_PER_LAYER]

Each layer holds one file of pseudo-random, moderately compressible text
(so gzip has real work to do, as with real images). Deterministic.
"""
import gzip, hashlib, io, json, os, random, sys, tarfile

out = sys.argv[1]
layers = int(sys.argv[2]) if len(sys.argv) > 2 else 6
mib = int(sys.argv[3]) if len(sys.argv) > 3 else 16
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)

def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)

words = [("%x" % random.Random(i).getrandbits(40)) for i in range(4096)]
descs, diff_ids = [], []
for n in range(layers):
    rng = random.Random(n)
    text = " ".join(rng.choice(words) for _ in range(mib * 1024 * 1024 // 11)).encode()[: mib << 20]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo(f"data/layer{n}.txt")
        info.size, info.mtime, info.mode = len(text), 0, 0o644
        t.addfile(info, io.BytesIO(text))
    raw = buf.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    gz = gzip.compress(raw, compresslevel=6, mtime=0)
    d, size = put(gz)
    descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": size})

config = {"architecture": arch, "os": "linux", "created": "2026-01-01T00:00:00Z",
          "config": {"Cmd": ["/bin/sh"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
cd, cs = put(json.dumps(config, separators=(",", ":")).encode())
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": descs}
md, ms = put(json.dumps(manifest, separators=(",", ":")).encode())
with open(os.path.join(out, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
               "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}, f)
print(md)
