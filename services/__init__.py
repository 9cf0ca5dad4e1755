"""pinnace control-plane and node components, and the machinery and client library they share."""
