"""The HTTP API (FastAPI): phones, banks and ATM switches. Only this package imports fastapi."""
