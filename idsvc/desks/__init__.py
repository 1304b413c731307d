"""The centre's side of remote desks.

Modules, one job each:

- ``registry``  desks: registration, enrolment of the desk key, request proofs
- ``gateway``   ``DeskGateway``: serves a desk's signed requests at the centre
"""
