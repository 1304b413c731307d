"""What runs on a desk PC. No database, no register, no issuer key: this package never
loads ``idsvc.storage`` (tests/test_layering.py).

Modules, one job each:

- ``folder``         where the desk keeps its files (imports nothing heavy)
- ``identity``       what the desk keeps on disk: its key, enrolment, session
- ``centre_client``  the desk's HTTP client of the centre, every request signed
- ``cards``          personalise, read, verify and wipe a PIV card
- ``printing``       draw a card face from what the centre hands over
"""
