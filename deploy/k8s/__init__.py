"""The Kubernetes manifests (docs/kubernetes.md), and ``render`` to read them as kubectl would."""
