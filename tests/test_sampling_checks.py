"""Numbers that are not numbers: schedules the scheduler cannot sample and NaN latents are refused with one
line, before an image is made from them."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nopaingan_core.errors import NoPainGanError
from nopaingan_core.sampling import SCHEDULERS, check_timesteps, sample


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(SCHEDULERS), steps=st.integers(1, 999))
def test_every_schedule_is_checked_against_the_table(tiny_sd, name, steps):
    """Any scheduler and step count: the schedule stays inside the table, or it is refused in one line."""
    sched = tiny_sd.scheduler(name)
    sched.set_timesteps(steps)
    timesteps = sched.timesteps
    inside = bool(timesteps.min() >= 0 and timesteps.max() <= 999 and (timesteps[1:] <= timesteps[:-1]).all())
    if inside:
        check_timesteps(sched, name, steps, 1000)
    else:
        with pytest.raises(NoPainGanError, match=f"scheduler {name} with {steps} steps") as err:
            check_timesteps(sched, name, steps, 1000)
        assert "\n" not in str(err.value)


def test_dpmpp_with_999_steps_is_refused_before_sampling(tiny_sd, monkeypatch):
    calls = []
    monkeypatch.setattr(tiny_sd.unet, "forward", lambda *a, **k: calls.append(1))
    cond = torch.zeros(1, 77, 768)
    with pytest.raises(NoPainGanError, match="scheduler dpmpp with 999 steps runs from timestep 1000"):
        sample(tiny_sd, cond, scheduler="dpmpp", steps=999, guidance=1.0, width=64, height=64)
    assert calls == []  # refused before the first UNet call


@pytest.mark.parametrize("bad_step", [1, 3])
def test_non_finite_latents_name_the_step(tiny_sd, monkeypatch, bad_step):
    forward = tiny_sd.unet.forward
    calls = []

    def broken(sample_in, t, **kwargs):
        calls.append(t)
        out = forward(sample_in, t, **kwargs)
        return (out[0] * float("nan"),) if len(calls) == bad_step else out

    monkeypatch.setattr(tiny_sd.unet, "forward", broken)
    cond = torch.zeros(1, 77, 768)
    with pytest.raises(NoPainGanError, match=f"NaN or infinite latents after step {bad_step} of 4"):
        sample(tiny_sd, cond, scheduler="ddim", steps=4, guidance=1.0, width=64, height=64)


def test_non_finite_latents_never_become_an_image(tiny_sd):
    with pytest.raises(NoPainGanError, match="decoded images"):
        tiny_sd.decode(torch.full((1, 4, 8, 8), float("nan")))
