"""GraphQL resolvers: thin calls into the domain service."""
