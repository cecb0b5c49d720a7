"""Messaging: everything k8sdm sends and receives over NATS JetStream, and the only package that
imports `nats` (the import-linter contract in `.importlinter` holds it to that).

- `messages`: the stream, its subjects, the consumer names, and the payloads (versioned frozen
  dataclasses: `ApplyRequest`, `SyncDeployment`);
- `jetstream`: the adapter: connecting, the stream and consumer configuration, one publish;
- `publisher`: `Publisher`, a component with start/stop for synchronous code (the api, the
  worker's outbox relay, the watcher), one per process, handed to whoever publishes;
- `consumer`: `Consumers`, the worker's pull subscriptions; what it hands out (`Delivery`) is
  finished with exactly one of ack, nak (with a delay) or term.

Nothing here imports an app: messages carry keys, never models.
"""
