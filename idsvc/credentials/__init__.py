"""TODO map."""
# issuance (was idsvc/credentials/issuance.py)
# state (was idsvc/credentials/state.py)
# printed_qr (was idsvc/credentials/printed_qr.py)
# issuers (was idsvc/credentials/issuers.py)
# card_faces (was idsvc/credentials/card_faces.py)
# status_lists (was idsvc/credentials/status_lists.py)
# status_versions (was idsvc/credentials/status_versions.py)
# publication (was idsvc/credentials/publication.py)
