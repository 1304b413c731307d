"""The HR register: the civil servants HR reports, their status, their photos.

Modules, one job each:

- ``use_cases``    ``Register``, the feature: HR imports, HR sync, status corrections
- ``records``      the register itself: importing HR records, status rules, corrections
- ``hr_sync``      HR systems' records over the API, through the same import
- ``contracts``    contracts that end: the sweep records the holder as ``contract_ended``
- ``photos``       holder photos: check, normalise, crop to the face, store
- ``photo_rule``   a photo's limits, free of the database (a desk checks them too)
- ``face_finder``  the one face in a desk photo (OpenCV, imported only when needed)
"""
