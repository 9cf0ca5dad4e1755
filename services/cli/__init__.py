"""pinctl: the kubectl-like command-line client (docs/cli.md). A component like the others: it
talks to the cluster only through services.client."""
