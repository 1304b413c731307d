"""One module per area of the API; ``mobile_api.api`` includes every router."""
