"""Admin for Gosuslugi deliveries (outbox)."""
