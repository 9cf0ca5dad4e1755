"""The client library every component is built on (the equivalent of client-go): a typed
client over the gRPC API, informers, a rate-limited work queue, leader election, and
manifest apply helpers. It imports only the machinery and the generated API code."""
