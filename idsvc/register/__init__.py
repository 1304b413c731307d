"""TODO map."""
# records (was idsvc/register/records.py)
# hr_sync (was idsvc/register/hr_sync.py)
# photos (was idsvc/register/photos.py)
# face_finder (was idsvc/register/face_finder.py)
