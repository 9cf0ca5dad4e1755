"""The controller-manager's controllers: each one watches the API through shared informers,
queues the keys of the objects whose actual state may differ from the desired state, and
converges them with level-triggered, idempotent syncs (DESIGN.md principle 1). They import
only the client library, the machinery and the generated API code."""
