"""One contract suite per port, run against the local adapter and the Azure adapter."""
