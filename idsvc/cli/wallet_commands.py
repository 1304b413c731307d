"""``idsvc wallet offer EMPLOYEE_ID``: activate a civil servant's phone credential at the console.

The offer is an OpenID4VCI credential offer with the pre-authorized code grant: the holder's
wallet scans the QR (or opens the link), then asks for the 6-digit transaction code, which the
operator reads out separately, never shown beside the QR (a photo of the screen alone gets
nothing). Single use, valid ``IDSVC_WALLET_OFFER_MINUTES``, audited (``wallet.offer``, without
either code). Refused (exit 5, ``WALLET_OFFER_REFUSED``) for a person not active, with no photo,
or whose contract ended. At a desk the same offer comes through the centre:
``idsvc desk wallet-offer`` (``idsvc.cli.desk_commands``), printed by ``show_offer`` here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from idsvc.cli.app import app
from idsvc.cli.common import EmployeeArg, JsonOpt, console, err_console, now, print_json, services
from idsvc.cli.errors import reported

wallet_app = typer.Typer(
    help="The civil servant's phone credential (OpenID4VCI offers).", no_args_is_help=True
)
app.add_typer(wallet_app, name="wallet")

PngOpt = Annotated[
    Path | None,
    typer.Option("-o", "--output", help="also write the offer's QR as a PNG file", dir_okay=False),
]
_PNG_DOTS_PER_MODULE = 8  # a QR about 8 cm wide on a screen or paper: any phone camera reads it


def _terminal_qr(text: str) -> Any:
    """The QR as text for a terminal: two modules a character (upper half block), dark on
    light whatever the terminal's own colours, with the quiet zone the standard asks for."""
    from rich.text import Text

    from cardio.qr import QUIET_ZONE_MODULES, encode

    symbol = encode(text)
    side = symbol.modules + 2 * QUIET_ZONE_MODULES

    def dark(row: int, col: int) -> bool:
        r, c = row - QUIET_ZONE_MODULES, col - QUIET_ZONE_MODULES
        return 0 <= r < symbol.modules and 0 <= c < symbol.modules and symbol.is_dark(r, c)

    colour = {True: "black", False: "white"}
    out = Text()
    for row in range(0, side, 2):
        for col in range(side):
            top, bottom = dark(row, col), row + 1 < side and dark(row + 1, col)
            out.append("▀", style=f"{colour[top]} on {colour[bottom]}")
        out.append("\n")
    return out


def _write_png(text: str, path: Path) -> None:
    from cardio.qr import encode, render

    render(encode(text), _PNG_DOTS_PER_MODULE).save(path, format="PNG")


def show_offer(answer: dict[str, Any], *, json_out: bool, png: Path | None) -> None:
    """Print an offer (``{"offer_uri", "tx_code", "expires_at"}``): with ``json_out`` exactly
    those three members; else the QR, then the transaction code to read out on its own."""
    if png is not None:
        _write_png(answer["offer_uri"], png)
        err_console.print(f"the offer's QR is in {png} (it does not show the transaction code)")
    if json_out:
        print_json({k: answer[k] for k in ("offer_uri", "tx_code", "expires_at")})
        return
    console.print("Scan with the wallet app on the civil servant's phone:")
    console.print(_terminal_qr(answer["offer_uri"]), end="", soft_wrap=True)
    console.print(f"or open: {answer['offer_uri']}")
    code = answer["tx_code"]
    console.print(
        f"\nRead this code out to the holder, do not show it with the QR: "
        f"[bold]{code[:3]} {code[3:]}[/]"
    )
    console.print(f"single use, valid until {answer['expires_at'][:16].replace('T', ' ')}Z")


@wallet_app.command("offer")
def wallet_offer(
    employee_id: EmployeeArg, json_out: JsonOpt = False, output: PngOpt = None
) -> None:
    """Make a single-use credential offer for the person's phone (QR + code to read out)."""
    with reported():
        offer = services().wallet.offer(employee_id, actor=None, now=now())
        show_offer(offer.as_dict(), json_out=json_out, png=output)
