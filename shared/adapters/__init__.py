"""Backend adapters: one module per port and backend."""
