"""TODO map."""
# operators (was idsvc/staff/operators.py)
# secrets (was idsvc/staff/secrets.py)
# totp (was idsvc/staff/totp.py)
# approvals (was idsvc/staff/approvals.py)
# offices (was idsvc/staff/offices.py)
