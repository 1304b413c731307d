"""A virtual PIV smart card for tests and desk training (no hardware).

``VirtualCard`` answers APDUs in-process; ``vpcd`` plugs it into pcscd's vpcd reader driver so
the real pyscard -> pcscd path runs; ``bench`` starts and stops pcscd and card processes.
The card keeps its keys in a plain file: never use it as a real credential store.
"""

from .applet import CardPulled, VirtualCard
from .state import CardState

__all__ = ["CardPulled", "CardState", "VirtualCard"]
