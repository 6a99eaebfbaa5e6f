"""Code that talks to a Kubernetes API: empty until the cluster-aware issue brings a client,
a Lease, Events and a report.

It sits beside ``webhook.server``, not on it: the two never import each other (the
import-linter contracts in pyproject.toml), and meet only through the core's
``webhook.observer.ReviewObserver``, which the server calls after each decision and this
package will implement (an Event for each injected or denied Pod). The command line
(``webhook.tools``) will wire one to the other.
"""
