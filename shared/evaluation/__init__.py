"""The evaluate step of the Azure ML training pipeline (run on the compute cluster, not in the function app)."""
