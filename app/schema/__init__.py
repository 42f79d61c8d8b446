"""The GraphQL face's types, inputs, enums and the schema itself."""
