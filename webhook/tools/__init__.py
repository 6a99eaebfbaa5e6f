"""The command line and what only it uses: ``sidecar-injector`` (``python -m webhook``), offline
inject and explain of manifests on disk, and the install manifests rendered with certificates.

Tools sit on top: they may use the core, the server and the cluster code, and nothing below
imports them (the import-linter contracts in pyproject.toml).
"""
