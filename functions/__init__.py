"""Azure Functions triggers (Python v2 model): one Blueprint per module, each handler thin."""
