"""pinctl: the kubectl-like client (services/cli)."""

from __future__ import annotations

from services.cli.app import main

if __name__ == "__main__":
    raise SystemExit(main())
