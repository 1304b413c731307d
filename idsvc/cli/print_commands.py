"""Printing desk commands: ``photo`` (store a holder's photo) and ``card-face`` (draw cards).

Exit 20 when a photo or a face is refused (the reason is printed; nothing is stored or
written). A batch writes the cards it could draw, lists each refused id, and exits 20 if any
was refused so that a script notices.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from idsvc.cli.app import app
from idsvc.cli.common import (
    EmployeeArg,
    JsonOpt,
    actor,
    console,
    now,
    print_json,
    progress_bar,
    services,
)
from idsvc.cli.errors import exit_code_of, reported
from idsvc.errors import CardFaceFailed, PhotoRejected, PrintRefused

if TYPE_CHECKING:  # imported where used: `idsvc` start-up must not load the database layer
    from idsvc.credentials.card_faces import CardFaces
    from idsvc.desk_client.printing import RemoteCardFaces
    from idsvc.services import Services

# cardio.card_face.MIN_DPI, written out: the `--dpi` default is needed to build the command
# line, and importing cardio (Pillow, cryptography) would slow every `idsvc` run down
# (tests/idsvc/cli/test_imports.py checks the two agree).
MIN_DPI = 300


def _services() -> Services:
    svc = services()
    svc.operations.health()  # schema current (else "run idsvc init"), database reachable
    return svc


@app.command("photo")
def photo(
    employee_id: EmployeeArg,
    file: Annotated[Path, typer.Argument(help="the photo: JPEG or PNG, head and shoulders")],
    json_out: JsonOpt = False,
) -> None:
    """Store a holder's photo (cropped to 35:45 for the card; replaces any earlier photo)."""
    from cardio.images import ImageRefused
    from idsvc.register.photo_rule import PHOTO_RULE
    from idsvc.register.photos import Photos

    with reported():
        try:
            PHOTO_RULE.check_size(file.stat().st_size)  # before reading it all
            data = file.read_bytes()
        except ImageRefused as exc:
            raise PhotoRejected(str(exc)) from None
        except OSError as exc:
            raise PhotoRejected(f"cannot read {file}: {exc.strerror}") from exc
        from idsvc.cli.desk_routing import enrolled_desk

        if enrolled_desk():  # a remote desk: the centre checks and stores it
            from idsvc.cli.desk_card_commands import photo_through_centre

            info = photo_through_centre(employee_id, data)
        else:
            svc = _services()
            info = Photos(svc.infra.db).store(
                employee_id, data, actor=actor(svc.settings), now=now()
            )
        if json_out:
            print_json(info.as_dict())
        else:
            console.print(
                f"photo stored for {escape(info.employee_id)}: {info.width}x{info.height} JPEG "
                f"({info.face_bytes:,} bytes) for the card, {info.qr_bytes:,}-byte "
                f"{info.qr_media_type} for a QR"
            )


@app.command("card-face")
def card_face(
    employee_id: Annotated[
        str | None, typer.Argument(help="employee id (or use --batch)", show_default=False)
    ] = None,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="FILE.png or FILE.pdf (a sheet with --batch)")
    ] = Path("card.png"),
    batch: Annotated[
        Path | None,
        typer.Option("--batch", help="file of employee ids, one a line: A4 sheets with cut marks"),
    ] = None,
    dpi: Annotated[int, typer.Option(help=f"resolution, {MIN_DPI} or more")] = MIN_DPI,
) -> None:
    """Draw a card's front and back (PNG: one above the other; PDF: two card-size pages)."""
    with reported():
        suffix = output.suffix.lower()
        if dpi < MIN_DPI or dpi > 1200:
            raise CardFaceFailed(f"--dpi must be between {MIN_DPI} and 1200, not {dpi}")
        if (batch is None) == (employee_id is None):
            raise CardFaceFailed("give either an EMPLOYEE_ID or --batch FILE")
        if batch is not None:
            if suffix != ".pdf":
                raise CardFaceFailed("a batch is written as A4 sheets: -o must end in .pdf")
            _batch(batch, output, dpi)
            return
        if suffix not in (".png", ".pdf"):
            raise CardFaceFailed("-o must end in .png or .pdf")
        faces, actor = _faces(dpi)
        assert employee_id is not None
        face = faces.render(employee_id, actor=actor, now=now())
        partial = _partial(output)
        from cardio.card_face import save_pdf, save_png

        try:
            (save_png if suffix == ".png" else save_pdf)(face, partial)
            os.replace(partial, output)
        except OSError as exc:
            raise CardFaceFailed(f"cannot write {output}: {exc.strerror}") from exc
        finally:
            partial.unlink(missing_ok=True)
        console.print(
            f"card face for {escape(employee_id)} written to {escape(str(output))} "
            f"(QR version {face.qr_version}, modules {face.qr_module_mm:.2f} mm, {dpi} dpi)"
        )


def _faces(dpi: int) -> tuple[CardFaces | RemoteCardFaces, str]:
    """The faces and the audited actor: the register here, or the centre on a remote desk
    (which audits the signed-in operator and the desk)."""
    from idsvc.cli.desk_routing import enrolled_desk

    if enrolled_desk():
        from idsvc.cli.desk_card_commands import remote_card_faces

        return remote_card_faces(dpi), ""
    from cardio.card_face import CardRenderer
    from idsvc.credentials.card_faces import CardFaces

    svc = _services()
    faces = CardFaces(
        svc.infra.db, CardRenderer(dpi=dpi), issuer_name_local=svc.settings.issuer_name_local
    )
    return faces, actor(svc.settings)


def _partial(output: Path) -> Path:
    # Written beside the target and renamed at the end: a failed run leaves no half file.
    return output.with_name(f".{output.name}.partial")


def _batch(batch: Path, output: Path, dpi: int) -> None:
    from idsvc.credentials.card_faces import read_batch_file

    try:
        ids = read_batch_file(batch.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CardFaceFailed(f"cannot read the batch file {batch}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise CardFaceFailed(f"the batch file {batch} is not UTF-8 text") from exc
    if not ids:
        raise CardFaceFailed(f"the batch file {batch} lists no employee ids")
    faces, actor = _faces(dpi)
    partial = _partial(output)
    partial.unlink(missing_ok=True)
    from cardio.card_face import SheetWriter

    writer = SheetWriter(partial, dpi)
    refused: list[tuple[str, str]] = []
    printed = 0
    progress = progress_bar()
    try:
        with progress:
            task = progress.add_task("card faces", total=len(ids))
            for item in faces.render_batch(ids, actor=actor, now=now()):
                if item.face is None:
                    reason = item.refused or "refused"
                    refused.append((item.employee_id, reason))
                    progress.console.print(
                        f"[yellow]skipped[/] {escape(item.employee_id)}: {escape(reason)}"
                    )
                else:
                    writer.add(item.face)
                    printed += 1
                progress.advance(task)
        writer.close()
        if printed:
            os.replace(partial, output)
    except OSError as exc:
        raise CardFaceFailed(f"cannot write {output}: {exc.strerror}") from exc
    finally:
        partial.unlink(missing_ok=True)
    if printed:
        console.print(
            f"{printed} card(s) on {writer.pages} A4 page(s) (fronts, then backs for long-edge "
            f"duplex) written to {escape(str(output))}; {len(refused)} skipped"
        )
    if refused:
        if not printed:
            raise CardFaceFailed(f"no card could be drawn; nothing written to {output}")
        raise typer.Exit(exit_code_of(PrintRefused))  # some skipped: a refusal
