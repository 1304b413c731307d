"""(being written: see idsvc/wallet/__init__.py)."""
