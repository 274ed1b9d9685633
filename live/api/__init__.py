"""The JSON HTTP API of docs/protocol.md: conversations and feedback."""
