"""RQ jobs that talk to Punchh: commit a distribution, send an alert, sweep stale records."""
