"""A webhook receiver down for a few seconds while HR status changes come in (the short
version of ``bench/fault_webhook_down.py``; the back-off is shortened by configuration,
``IDSVC_WEBHOOK_FIRST_RETRY`` / ``IDSVC_WEBHOOK_MAX_RETRY``, as an operator would set it)."""

from __future__ import annotations

from pathlib import Path

from tests.support.bench import bench_module


def test_receiver_down_gets_every_event_after_it_returns(tmp_path: Path, postgres_db: str) -> None:
    fault = bench_module("fault_webhook_down")
    result = fault.drill(
        postgres_db,
        tmp_path,
        down_for=4,
        changes=20,
        first_retry=0.5,
        max_retry=2,
        with_load=False,
    )
    print("\n".join(result.lines()))
    assert result.failures == []
    # HR writes went through while a receiver was down; the other receiver was not held up.
    assert [s for s, _ in result.hr_down] == [200] * 10
    assert result.steady_during_outage >= 10
    # After its return the receiver got all 20 events, and the outbox is empty.
    assert len(result.received["flaky"]) == len(result.expected["flaky"]) == 20
    assert result.outbox == {"delivered": 40}
    assert result.attempts["flaky"] >= 2 and result.attempts["steady"] == 1
    assert result.caught_up_after is not None
