"""UnregisterRetry (client/shm.py): an unregister Triton refuses as "currently in use" is tried again
after short pauses (0.9 s in all); any other failure, or the last, is logged once and given up."""

from __future__ import annotations

import logging

from tritonstack.client.shm import UNREGISTER_PAUSES_S, UnregisterRetry

from tritonstack.errors import InternalServerError

_IN_USE = InternalServerError("Cannot unregister shared memory region 'r', it is currently in use.")


def test_in_use_is_retried_then_done_quietly(caplog) -> None:  # noqa: ANN001
    retry = UnregisterRetry("r")
    with caplog.at_level(logging.WARNING):
        assert retry.again(_IN_USE) and retry.pause == UNREGISTER_PAUSES_S[0]
        assert retry.again(_IN_USE) and retry.pause == UNREGISTER_PAUSES_S[1]
        assert not retry.again(None)
    assert not caplog.records


def test_in_use_gives_up_after_the_last_pause_and_says_so(caplog) -> None:  # noqa: ANN001
    retry = UnregisterRetry("r")
    with caplog.at_level(logging.WARNING):
        pauses = []
        while retry.again(_IN_USE):
            pauses.append(retry.pause)
    assert tuple(pauses) == UNREGISTER_PAUSES_S and sum(pauses) < 1.0
    assert [r.getMessage() for r in caplog.records] == [f"could not unregister shared-memory region r: {_IN_USE}"]


def test_another_failure_is_not_retried(caplog) -> None:  # noqa: ANN001
    with caplog.at_level(logging.WARNING):
        assert not UnregisterRetry("r").again(InternalServerError("no such region"))
    assert len(caplog.records) == 1
