#!/usr/bin/env bash
# Turns on GPU time-slicing (8 desktops per GPU) in a cluster with the NVIDIA GPU Operator, then
# shows each GPU node's advertised count. Needs kubectl with access to the cluster.
set -euo pipefail
cd "$(dirname "$0")"
kubectl apply -f time-slicing-config.yaml
kubectl patch clusterpolicy/cluster-policy -n gpu-operator --type merge \
  -p '{"spec": {"devicePlugin": {"config": {"name": "time-slicing-config", "default": "any"}}}}'
# The device plugin restarts with the new config; each GPU node then advertises 8 per GPU.
kubectl rollout status daemonset/nvidia-device-plugin-daemonset -n gpu-operator --timeout=5m
kubectl get nodes -l nvidia.com/gpu.present=true \
  -o custom-columns='NODE:.metadata.name,GPUS:.status.capacity.nvidia\.com/gpu,REPLICAS:.metadata.labels.nvidia\.com/gpu\.replicas'
