"""The asyncio generator: every request is a sample, open-loop latency is measured from the schedule."""

import asyncio

import pytest
from tritonstack.loadtest.generator import closed_loop, open_loop
from tritonstack.loadtest.schedule import Arrival, arrival_offsets
from tritonstack.loadtest.stats import Recorder, summarize

from tritonstack.errors import ConfigError


def test_constant_and_poisson_schedules_are_bounded():
    constant = arrival_offsets(rate_rps=100, duration_s=2, process=Arrival.CONSTANT)
    assert len(constant) == 200 and constant[1] == pytest.approx(0.01)
    poisson = arrival_offsets(rate_rps=100, duration_s=2, process="poisson", seed=1)
    assert 100 < len(poisson) <= 200 and poisson.max() < 2 and (poisson[1:] >= poisson[:-1]).all()
    assert len(arrival_offsets(rate_rps=1e6, duration_s=10, max_requests=500)) == 500
    with pytest.raises(ConfigError):
        arrival_offsets(rate_rps=0, duration_s=1)


def test_open_loop_latency_includes_the_wait_for_a_slot():
    # One slot; the first request holds it for 0.2 s; the others are due at 0.00-0.04 s and are
    # served at once when they get the slot. Measured from the schedule, each waited >= ~0.15 s.
    async def send(i: int) -> None:
        await asyncio.sleep(0.2 if i == 0 else 0.0)

    recorder = Recorder()
    asyncio.run(open_loop(send, offsets=[0.0, 0.01, 0.02, 0.03, 0.04], recorder=recorder, max_in_flight=1))
    samples = recorder.frame()
    assert len(samples) == 5 and samples.ok.all()
    late = samples.latency_s[samples.schedule_delay_s > 0.1]
    assert len(late) == 4  # every queued request is charged its wait ...
    assert (late >= 0.15).all()  # ... although its own service time was ~0
    assert ((samples.end_s - samples.start_s)[samples.schedule_delay_s > 0.1] < 0.15).all()


def test_failures_are_recorded_not_lost():
    async def send(i: int) -> None:
        if i % 2:
            raise TimeoutError("slow")

    recorder = Recorder()
    asyncio.run(closed_loop(send, concurrency=2, duration_s=0.05, recorder=recorder, max_requests=40))
    samples = recorder.frame()
    assert 0 < len(samples) <= 40
    assert set(e for e in samples.errors if e) == {"TimeoutError"}
    assert (~samples.ok).sum() >= len(samples) // 2 - 1


def test_a_steady_states_throughput_counts_what_completes_in_the_window():
    # 8 in flight, 0.25 s each: 32 req/s. Counting by send time undercounts: the window's first
    # 0.25 s of service go to requests sent during the warm-up, and the drain counts as time.
    async def send(i: int) -> None:
        await asyncio.sleep(0.25)

    def throughput(**kwargs: bool) -> float:
        recorder = Recorder()
        run = asyncio.run(closed_loop(send, concurrency=8, duration_s=1.0, warmup_s=0.1, recorder=recorder,
                                      **kwargs))
        return summarize(recorder.frame(), duration_s=run.duration_s)["throughput_rps"]

    steady, by_send = throughput(completed_in_window=True), throughput()
    assert steady == pytest.approx(32, rel=0.15)
    assert by_send < 0.92 * steady


def test_counting_by_completion_still_reports_a_failure_that_comes_after_the_window():
    async def send(i: int) -> None:
        await asyncio.sleep(0.4)
        raise TimeoutError("deadline")

    recorder = Recorder()
    asyncio.run(closed_loop(send, concurrency=2, duration_s=0.2, recorder=recorder, completed_in_window=True))
    samples = recorder.frame()
    assert len(samples) == 2 and set(samples.errors) == {"TimeoutError"}


def test_closed_loop_is_bounded_by_count():
    async def send(i: int) -> None:
        await asyncio.sleep(0)

    recorder = Recorder()
    asyncio.run(closed_loop(send, concurrency=4, duration_s=30, recorder=recorder, max_requests=100))
    assert len(recorder) == 100


@pytest.mark.parametrize("loop", ["closed", "open"])
def test_a_stop_does_not_wait_out_requests_hung_in_flight(loop):
    # A hung server: every request would wait out its deadline (here 600 s). After should_stop(),
    # in-flight requests get STOP_GRACE_S, then are cancelled and not recorded as failures.
    started = []

    async def send(i: int) -> None:
        started.append(i)
        await asyncio.sleep(600)

    async def run():
        loop_start = asyncio.get_running_loop().time()

        def should_stop() -> bool:
            return asyncio.get_running_loop().time() - loop_start > 0.3

        recorder = Recorder()
        if loop == "closed":
            coroutine = closed_loop(send, concurrency=4, duration_s=600, recorder=recorder, should_stop=should_stop)
        else:
            coroutine = open_loop(send, offsets=[0.0, 0.1, 0.2, 100.0], recorder=recorder, should_stop=should_stop)
        await asyncio.wait_for(coroutine, timeout=60)  # was: 600 s, the requests' own wait
        return recorder

    recorder = asyncio.run(run())
    assert started and len(recorder.frame()) == 0


def test_open_loop_stops_sending_at_the_end_of_its_window_however_far_behind():
    # 1000 requests due in the first 0.1 s, one slot, each takes 0.05 s: keeping the schedule would
    # take 50 s. With a 0.5 s send window about 10 are sent and the rest are counted as never sent.
    async def send(i: int) -> None:
        await asyncio.sleep(0.05)

    recorder = Recorder()
    offsets = [i * 1e-4 for i in range(1000)]
    run = asyncio.run(open_loop(send, offsets=offsets, recorder=recorder, max_in_flight=1, send_for_s=0.5))
    print(f"sent {len(recorder)} of 1000 in a 0.5 s window; never sent: {run.unsent}")
    assert 0 < len(recorder) < 100
    assert run.unsent == 1000 - len(recorder)
