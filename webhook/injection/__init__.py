"""The injection builder's features, one module each; ``webhook.inject`` runs them in order.

``builder`` holds the copy-on-write state of one injection; ``containers`` takes the
profiles' containers and puts them in place; ``order`` gives the start and stop order
(legacy hooks, drains, the grace period); ``probes`` adds readiness, liveness and warm-up
probes; ``sharing`` adds what the containers share (volumes, pod info, the process
namespace). Each records the JSON Patch op of every change it makes (``webhook.patch``).
"""
