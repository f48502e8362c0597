#!/usr/bin/env python3
"""Writes N VDISessions spread over NS namespaces (one file per namespace) plus two templates,
for the renderer benchmark: gen-sessions.py N NS DIR."""
import os
import sys

n, namespaces, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "templates.yaml"), "w") as f:
    f.write("""apiVersion: vdi.kasm.io/v1alpha1
kind: VDITemplate
metadata: {name: desktop}
spec:
  image: ghcr.io/vdi/desktop:1
  resources: {defaultGPU: 1, maxGPU: 2, defaultMemory: 8Gi}
  env: [{name: TZ, value: UTC}]
---
apiVersion: vdi.kasm.io/v1alpha1
kind: VDITemplate
metadata: {name: office}
spec:
  image: ghcr.io/vdi/office:1
  resources: {defaultGPU: 0, maxGPU: 0}
""")
files = [open(os.path.join(out, f"ns-{i:03d}.yaml"), "w") for i in range(namespaces)]
for i in range(n):
    ns = i % namespaces
    tmpl = "office" if i % 5 == 0 else "desktop"
    files[ns].write(f"""---
apiVersion: vdi.kasm.io/v1alpha1
kind: VDISession
metadata:
  name: user-{i:06d}
  namespace: team-{ns:03d}
spec:
  user: user{i}@example.com
  template: {tmpl}
  timeout: {1 + i % 12}h
""")
for f in files:
    f.close()
