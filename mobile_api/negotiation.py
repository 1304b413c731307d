"""Content negotiation shared by the routes that can answer CSV as well as JSON (payroll checks,
the controls report)."""

from __future__ import annotations


def prefers_csv(accept: str) -> bool:
    """True when ``text/csv`` has a higher q-value than JSON in the Accept header."""
    best = {"text/csv": -1.0, "application/json": -1.0}
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media, q = fields[0].lower(), 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        if media in best:
            best[media] = max(best[media], q)
    return best["text/csv"] > max(best["application/json"], 0.0)
