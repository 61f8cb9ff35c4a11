"""Reproduced methods: one small file per method, registered in ``METHODS`` by name."""
