"""``warehouse.base.prefetch``: the background producer used to decode the next block during a write."""

import threading
import time

import pytest

from chimera_assets.warehouse.base import prefetch


def test_items_arrive_in_order_and_the_producer_runs_ahead_by_at_most_depth():
    produced: list[int] = []

    def items():
        for i in range(6):
            produced.append(i)
            yield i

    got = []
    for item in prefetch(items(), depth=1):
        time.sleep(0.05)  # the consumer is slow: the producer waits for it, one item ahead at most
        assert len(produced) - len(got) <= 3  # item being consumed + one queued + one blocked in put
        got.append(item)
    assert got == list(range(6))


def test_a_producer_exception_is_raised_at_its_item():
    def items():
        yield 1
        yield 2
        raise ValueError("injected: bad block 3")

    got = []
    with pytest.raises(ValueError, match="bad block 3"):
        for item in prefetch(items()):
            got.append(item)
    assert got == [1, 2]


def test_the_producer_stops_when_the_consumer_gives_up():
    produced: list[int] = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    with pytest.raises(RuntimeError):
        for item in prefetch(items()):
            if item == 2:
                raise RuntimeError("the write failed")
    assert len(produced) < 10
    # the executor was shut down: its worker thread is gone, not left idle
    assert not [t for t in threading.enumerate() if t.name.startswith("chimera-prefetch")]


def test_deeper_read_ahead_keeps_order_and_one_producer_thread():
    threads: set[str] = set()

    def items():
        for i in range(20):
            threads.add(threading.current_thread().name)
            yield i

    assert list(prefetch(items(), depth=3)) == list(range(20))
    assert len(threads) == 1 and threading.current_thread().name not in threads  # one background thread


def test_an_empty_source_ends_at_once_and_leaves_no_thread():
    assert list(prefetch(iter(()))) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("chimera-prefetch")]
