"""Azure adapters: Azure ML SDK v2 (`azure-ai-ml`) and Azure Blob Storage behind the same ports.

Install with `pip install .[azure]`. Nothing here is imported unless BANKOPS_BACKEND=azure or
BANKOPS_DATASTORE=azurite|azure: the local backend runs without the Azure packages.
"""
