"""Card faces at a remote desk: the centre hands over what one card shows (``CardFaceData``:
register fields, the live credential's printed QR, the photo), refusing what must not be
printed and auditing the print as ``name@desk``; the desk draws it here.

Why the desk draws and the centre does not: a face at 300-1200 dpi is a PNG or PDF of a few
megabytes, while the data is a few kilobytes (the photo is a normalised 420 x 540 JPEG), and a
provincial link is slow; the fonts that shape Lao and Khmer are on every desk already. Nothing
of it is kept on the desk except the file the operator asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from cardio.card_face import BatchItem, CardFace, CardRenderer
from cardio.errors import PrintError
from idsvc.desk_client.centre_client import CentreClient
from idsvc.errors import CardFaceFailed, DeskError, IdsvcError, OperatorError


class RemoteCardFaces:
    """``CardFaces`` for a remote desk (same two methods); ``actor`` is the signed-in
    operator, whom the centre knows from the session, so it is not sent."""

    def __init__(self, remote: CentreClient, renderer: CardRenderer | None = None) -> None:
        self._remote = remote
        self.renderer = renderer or CardRenderer()

    def render(self, employee_id: str, *, actor: str, now: datetime) -> CardFace:
        data = self._remote.card_face_data(employee_id)
        try:
            return self.renderer.render(data)
        except PrintError as exc:
            raise CardFaceFailed(str(exc)) from exc

    def render_batch(
        self, employee_ids: Iterable[str], *, actor: str, now: datetime
    ) -> Iterator[BatchItem]:
        """A refused person is skipped with the reason; a dropped link, an ended session or a
        disabled desk stops the batch (every later id would fail the same way)."""
        for employee_id in employee_ids:
            try:
                face = self.render(employee_id, actor=actor, now=now)
            except (DeskError, OperatorError):
                raise
            except IdsvcError as exc:
                yield BatchItem(employee_id, None, str(exc))
            else:
                yield BatchItem(employee_id, face, None)
