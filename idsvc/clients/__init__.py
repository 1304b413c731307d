"""TODO map."""
# api_clients (was idsvc/clients/api_clients.py)
# rate_limits (was idsvc/clients/rate_limits.py)
