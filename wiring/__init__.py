"""Wiring: settings, service construction, logging, the CLI and the release check."""
