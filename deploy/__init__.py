"""Deployment files (compose, nginx, Patroni) and the one tool they need: ``make_secrets``."""
