"""Authentication and authorisation of API requests (DESIGN.md section 2: authn -> authz ->
admission -> validation -> storage)."""
