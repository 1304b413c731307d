"""TODO map."""
# chain (was idsvc/audit/chain.py)
# replay (was idsvc/audit/replay.py)
# who_checked (was idsvc/audit/who_checked.py)
# request_scope (was idsvc/audit/request_scope.py)
