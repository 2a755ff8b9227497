"""Response and request models, one module per resource (used for validation and the OpenAPI spec)."""
