"""The API's callers: clients and their secrets, and rate limits.

Modules, one job each:

- ``api_clients``  API clients (banks, HR systems, verifier apps): scopes, secrets
- ``rate_limits``  rate limits shared by every worker, counted in the database
"""
