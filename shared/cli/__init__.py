"""The `bankops` command line."""
