"""Machinery every component shares: the kind registry, the manifest codec, selectors,
quantities, defaulting and validation. It imports only the generated API code."""
