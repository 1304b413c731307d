"""TODO map."""
# identity (was idsvc/desk_client/identity.py)
# centre_client (was idsvc/desk_client/centre_client.py)
# printing (was idsvc/desk_client/printing.py)
# cards (was idsvc/desk_client/cards.py)
