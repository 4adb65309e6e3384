"""Monitoring: OpenTelemetry (Azure Monitor when configured), the JSON request log, Prometheus
metrics, the availability probe, and the views of `bankops monitor`."""
