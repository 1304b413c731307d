"""TODO map."""
# rules (was idsvc/verification/rules.py)
# online (was idsvc/verification/online.py)
# offline (was idsvc/verification/offline.py)
# sources (was idsvc/verification/sources.py)
# card_challenges (was idsvc/verification/card_challenges.py)
