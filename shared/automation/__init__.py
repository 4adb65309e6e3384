"""Event-driven automation: events and commands, the durable work queue, handlers, the gate."""
