"""Local adapters: files, SQLite and MLflow under $BANKOPS_HOME."""
