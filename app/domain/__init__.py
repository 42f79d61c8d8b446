"""The domain service: every rule of the API, framework-free."""
