"""Acquisition plans (useq-schema MDA events) and the two runners."""

import numpy as np
import pytest

useq = pytest.importorskip("useq", reason="acquisition plans need useq-schema "
                                          '(pip install "microsight[acquire]")')

from microsight.acquire.microscope import (  # noqa: E402
    DirectRunner,
    SimulatedMicroscope,
)
from microsight.acquire.plans import (  # noqa: E402
    event_minutes,
    fixed_sequence,
    frame_event,
    load_events,
    save_events,
)
from microsight.acquire.runners import pymmcore_available  # noqa: E402
from microsight.acquire.specimen import SampleSpecimen  # noqa: E402


def _plan():
    return [frame_event(1, 0, 0.0, power=0.1, metadata={"why": "first look"}),
            frame_event(1, 0, 0.0, power=1.0, roi=(16, 0, 16, 48), metadata={"why": "uncertain"}),
            frame_event(0, 3, 45.0, power=0.3, exposure_ms=50.0)]


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_events_round_trip(tmp_path, suffix):
    events = _plan()
    path = save_events(events, tmp_path / f"events{suffix}")
    back = load_events(path)
    assert back == events
    assert [event_minutes(e) for e in back] == [0.0, 0.0, 45.0]
    assert back[1].properties[1] == ("Light", "ROI", "16,0,16,48")


def test_fixed_protocol_sequence_round_trips_through_yaml():
    seq = fixed_sequence(3, 4, 15.0, power=0.3)
    text = seq.yaml()
    import yaml

    back = useq.MDASequence.model_validate(yaml.safe_load(text))
    assert back == seq
    events = list(back)
    assert len(events) == 12 and {e.index["p"] for e in events} == {0, 1, 2}


def _frames(runner_cls):
    scope = SimulatedMicroscope(SampleSpecimen(2, size=32, seed=4), seed=9)
    got = []
    runner_cls(scope).run(iter(_plan_two_fields()), lambda f, e: got.append((f, e)))
    return scope, got


def _plan_two_fields():
    return [frame_event(p, t, 10.0 * t, power=0.5, roi=(0, 0, 8, 32) if t else None)
            for t in range(2) for p in range(2)]


def test_direct_runner_moves_stage_sets_light_and_clock():
    scope, got = _frames(DirectRunner)
    assert [e.index["p"] for _, e in got] == [0, 1, 0, 1]
    assert scope.time == 10.0 and scope.field == 1 and scope.roi == (0, 0, 8, 32)
    # Two full frames and one 8-row strip at 0.5 x 100 ms on each field.
    assert scope.specimen.light[0].total == pytest.approx(0.5 + 0.5 * 8 / 32)


@pytest.mark.skipif(not pymmcore_available(), reason="pymmcore-plus is not installed")
def test_pymmcore_engine_gives_the_same_frames_as_the_direct_runner():
    from microsight.acquire.runners import PymmcoreRunner

    _, direct = _frames(DirectRunner)
    _, engine = _frames(PymmcoreRunner)
    assert len(engine) == len(direct)
    for (a, ea), (b, eb) in zip(direct, engine, strict=True):
        np.testing.assert_array_equal(a, b)
        assert ea.index == eb.index
