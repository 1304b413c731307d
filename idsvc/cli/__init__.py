"""The ``idsvc`` command line (Typer + Rich). The only layer (with the API) that reads the clock."""
