"""sidecar-injector: a Kubernetes mutating admission webhook that injects sidecars."""

__version__ = "0.1.0"
