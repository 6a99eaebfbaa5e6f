"""`python -m webhook` runs the same CLI as the `sidecar-injector` console script."""

import sys

from webhook.tools.cli import main

if __name__ == "__main__":
    sys.exit(main())
