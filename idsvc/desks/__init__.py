"""TODO map."""
# registry (was idsvc/desks/registry.py)
# gateway (was idsvc/desks/gateway.py)
