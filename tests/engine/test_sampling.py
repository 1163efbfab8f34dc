"""Schedules and samplers: replay of the upstream DiT traces, RNG order, rk4 both ways, stopping."""

import math

import pytest
import torch
from parity import generate_cases, load_case, plan_for_case

from stable_audio_3.sampling import (
    SAMPLERS,
    FluxShift,
    FullShift,
    IdentityShift,
    LogSNRShift,
    build_schedule,
    check_init_noise_level,
    default_sampling_shift,
    resolve_sampler,
    sample,
    sample_pingpong,
    shift_from_options,
    start_from_init,
)

TRACED = generate_cases("trace.step00.v")


class Replay:
    """``model_fn`` that returns the recorded velocities and checks the x and t it receives."""

    def __init__(self, case, first_step: int = 0):
        self.case, self.step = case, first_step

    def __call__(self, x, t):
        tensors = self.case.tensors
        prefix = f"trace.step{self.step:02d}"
        torch.testing.assert_close(t, tensors[f"{prefix}.t"], rtol=0, atol=0)
        torch.testing.assert_close(x, tensors[f"{prefix}.x"], rtol=0, atol=1e-6)
        self.step += 1
        return tensors[f"{prefix}.v"]


def initial_noise(case, plan):
    """Upstream's first draw after seeding: the (B, C, L) starting noise."""
    torch.manual_seed(case.meta["seed"])
    batch = case.tensors["output.latents"].shape[0]
    return torch.randn([batch, case.tensors["output.latents"].shape[1], plan.latent_length])


def case_schedule(case, plan, steps: int):
    sigma = case.meta["args"].get("init_noise_level", 1.0)
    return build_schedule(steps, sigma, default_sampling_shift(), plan.effective_lengths)


@pytest.mark.parametrize("name", [n for n in TRACED if n != "base_cfg7_steps50"])
def test_pingpong_replays_trace_and_output(name):
    case = load_case(name)
    plan = plan_for_case(case)
    noise = initial_noise(case, plan)
    if "init_audio" in case.meta["args"]:
        x = case.tensors["trace.step00.x"]  # init latents (from the encoder) mixed with the noise
    else:
        assert torch.equal(noise, case.tensors["trace.step00.x"])
        x = noise
    out = sample("pingpong", Replay(case), x, case_schedule(case, plan, 8), disable_tqdm=True)
    case.assert_output("output.latents", out)


def test_euler_replays_first_and_last_steps_of_50():
    case = load_case("base_cfg7_steps50")
    plan = plan_for_case(case)
    schedule = case_schedule(case, plan, 50)
    noise = initial_noise(case, plan)
    assert torch.equal(noise, case.tensors["trace.step00.x"])
    replay = Replay(case)
    x3 = sample("euler", replay, noise, schedule[:, :3], disable_tqdm=True)  # checks x of steps 1, 2
    assert replay.step == 2 and x3.shape == noise.shape
    out = sample(
        "euler", Replay(case, 48), case.tensors["trace.step48.x"], schedule[:, 48:], disable_tqdm=True
    )
    case.assert_output("output.latents", out)


def test_rk4_upstream_compat_returns_the_starting_noise():
    case = load_case("base_sampler_rk4")
    plan = plan_for_case(case)
    schedule = case_schedule(case, plan, case.meta["args"]["steps"])

    def never(x, t):
        raise AssertionError("upstream's rk4 never calls the model with a per-item schedule")

    out = sample(
        "rk4", never, initial_noise(case, plan), schedule, disable_tqdm=True, rk4_upstream_compat=True
    )
    case.assert_output("output.latents", out)
    with pytest.raises(ValueError, match="batch_size 1"):
        sample("rk4", never, torch.zeros(2, 4, 8), schedule.expand(2, -1), rk4_upstream_compat=True)


def test_default_schedule_is_length_free_and_pins_sigma_max():
    a2a = load_case("a2a_noise0p7")
    rows = build_schedule(8, 0.7, default_sampling_shift(), torch.tensor([3.0, 300.0]))
    assert rows.shape == (2, 9) and torch.equal(rows[0], rows[1])
    recorded = torch.stack([a2a.tensors[f"trace.step{i:02d}.t"][0] for i in range(8)])
    assert torch.equal(rows[0, :8], recorded)
    assert rows[0, 0] == torch.tensor(0.7) and rows[0, 1] > 0.7  # no rescale: rises after step 0
    t = torch.linspace(1, 0, 9)
    assert torch.allclose(default_sampling_shift().shift(t, 1)[1:-1], torch.sigmoid(8.2 * t - 2)[1:-1])


def test_batch_of_steps_plus_one_items_still_gets_per_item_rows():
    lengths = torch.tensor([10.0, 100.0, 1000.0])
    rows = build_schedule(2, 1.0, LogSNRShift(rate=1.0), lengths)
    assert rows.shape == (3, 3)
    for row, length in zip(rows, lengths, strict=True):
        torch.testing.assert_close(row, build_schedule(2, 1.0, LogSNRShift(rate=1.0), int(length)))


def test_shift_options():
    assert isinstance(shift_from_options(None), LogSNRShift)
    assert isinstance(shift_from_options({"base_shift": 0.5, "max_shift": 1.15}), FullShift)
    assert isinstance(shift_from_options({"type": "none"}), IdentityShift)
    flux = shift_from_options({"type": "flux", "alpha_min": 3.0, "alpha_max": 3.0})
    t = torch.tensor([0.0, 0.5, 1.0])
    assert torch.allclose(flux.shift(t, 1000), torch.tensor([0.0, 0.75, 1.0]))
    with pytest.raises(ValueError, match="logsnr"):
        shift_from_options({"type": "cosine"})
    longer = FluxShift(alpha_min=1.0, alpha_max=4.0).shift(torch.tensor(0.5), torch.tensor(4096.0))
    assert longer > 0.5


def test_sampler_names_and_defaults():
    assert resolve_sampler(None, "rf_denoiser") == "pingpong"
    assert resolve_sampler(None, "rectified_flow") == "euler"
    assert resolve_sampler("dpmpp", "rf_denoiser") == "dpmpp"
    with pytest.raises(ValueError, match="pingpong, euler, dpmpp, rk4"):
        resolve_sampler("heun", "rectified_flow")
    with pytest.raises(ValueError, match="pingpong, euler, dpmpp, rk4"):
        sample("heun", lambda x, t: x, torch.zeros(1, 1, 1), torch.linspace(1, 0, 3))
    with pytest.raises(ValueError, match="objective"):
        resolve_sampler(None, "v")


def gaussian_velocity(scale: float):
    """Exact velocity when data ~ N(0, scale^2): the flow maps noise e to scale * e at t = 0."""

    def model_fn(x, t):
        t = t.view(-1, 1, 1).to(torch.float64)
        denoised = (1 - t) * scale**2 / ((1 - t) ** 2 * scale**2 + t**2) * x
        return ((x - denoised) / t).to(x.dtype)

    return model_fn


def test_deterministic_samplers_converge_with_the_expected_order():
    torch.manual_seed(0)
    noise = torch.randn(1, 4, 64, dtype=torch.float64)
    target = 0.5 * noise
    errors = {}
    for name in ("euler", "dpmpp", "rk4"):
        for steps in (8, 16):
            schedule = build_schedule(steps, 1.0, IdentityShift(), 1).to(torch.float64)
            out = sample(name, gaussian_velocity(0.5), noise, schedule, disable_tqdm=True)
            errors[name, steps] = (out - target).abs().max().item()
    assert errors["rk4", 16] < errors["dpmpp", 16] < errors["euler", 16]
    assert errors["euler", 8] / errors["euler", 16] > 1.7  # first order
    assert errors["rk4", 16] < 1e-5


def test_dpmpp_matches_the_log_snr_form_of_dpm_solver_2m():
    """x_n = (t_n/t_c) x - (1 - t_n)(e^-h - 1) D', D' = (1 + 1/2r) D - D_prev/2r (first and last step: D)."""
    torch.manual_seed(2)
    x0 = torch.randn(1, 3, 16, dtype=torch.float64)
    schedule = torch.linspace(0.9, 0, 7, dtype=torch.float64)  # sigma < 1 keeps every log-SNR finite
    model_fn = gaussian_velocity(0.6)

    def lam(t):
        return math.log((1 - t) / t)

    x, previous, ts = x0.clone(), None, schedule.tolist()
    for i, (tc, tn) in enumerate(zip(ts[:-1], ts[1:], strict=True)):
        denoised = x - tc * model_fn(x, torch.tensor([tc], dtype=torch.float64))
        if tn == 0:
            x = denoised
        else:
            h = lam(tn) - lam(tc)
            target = denoised
            if previous is not None:
                r = (lam(tc) - lam(ts[i - 1])) / h
                target = (1 + 1 / (2 * r)) * denoised - previous / (2 * r)
            x = (tn / tc) * x - (1 - tn) * math.expm1(-h) * target
        previous = denoised
    out = sample("dpmpp", model_fn, x0, schedule, disable_tqdm=True)
    torch.testing.assert_close(out, x, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["euler", "dpmpp", "rk4"])
def test_per_item_rows_match_running_items_alone(name):
    torch.manual_seed(1)
    x = torch.randn(2, 3, 10, dtype=torch.float64)
    lengths = torch.tensor([50.0, 3000.0])
    rows = build_schedule(6, 1.0, FluxShift(alpha_min=1.0, alpha_max=5.0), lengths).to(torch.float64)
    assert not torch.equal(rows[0], rows[1])
    together = sample(name, gaussian_velocity(0.7), x, rows, disable_tqdm=True)
    for b in range(2):
        alone = sample(name, gaussian_velocity(0.7), x[b : b + 1], rows[b : b + 1], disable_tqdm=True)
        torch.testing.assert_close(together[b : b + 1], alone, rtol=0, atol=1e-12)


def test_pingpong_draws_one_noise_per_step_including_the_last():
    steps = 5
    torch.manual_seed(3)
    x = torch.randn(2, 3, 7)
    sample_pingpong(lambda x, t: torch.zeros_like(x), x, build_schedule(steps), disable_tqdm=True)
    after = torch.randn(4)
    torch.manual_seed(3)
    torch.randn(2, 3, 7)
    for _ in range(steps):
        torch.randn(2, 3, 7)
    assert torch.equal(after, torch.randn(4))


def test_pingpong_dtype_flow_with_guided_float32_output():
    seen = []

    def guided(x, t):  # CFG returns float32 even for a half-precision model
        seen.append((x.dtype, t.dtype))
        return torch.ones(x.shape, dtype=torch.float32)

    out = sample_pingpong(
        guided, torch.zeros(1, 2, 4, dtype=torch.float16), build_schedule(3), disable_tqdm=True
    )
    assert seen == [
        (torch.float16, torch.float16),
        (torch.float32, torch.float32),
        (torch.float32, torch.float32),
    ]
    assert out.dtype == torch.float32


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_callback_reports_each_step_and_can_stop_between_steps(name):
    calls, infos = [], []

    def model_fn(x, t):
        calls.append(t)
        return torch.zeros_like(x)

    class Stop(Exception):
        pass

    def callback(info):
        infos.append(info)
        if info["i"] == 1:
            raise Stop

    with pytest.raises(Stop):
        sample(name, model_fn, torch.ones(1, 2, 3), build_schedule(4), callback=callback, disable_tqdm=True)
    assert [i["i"] for i in infos] == [0, 1] and all(i["steps"] == 4 for i in infos)
    assert set(infos[0]) >= {"i", "steps", "x", "t", "denoised"}
    assert len(calls) == (5 if name == "rk4" else 2)  # rk4: four calls in step 0, then k1 of step 1


def test_start_from_init_mixes_at_sigma():
    init, noise = torch.full((1, 1, 2), 2.0), torch.full((1, 1, 2), -1.0)
    assert torch.allclose(start_from_init(init, noise, 0.25), torch.full((1, 1, 2), 1.25))
    assert torch.equal(start_from_init(init, noise, 1.0), noise)


def test_logsnr_shift_rate_moves_the_start_with_length():
    shift = LogSNRShift(rate=1.0)
    t = torch.tensor(0.5)
    assert shift.shift(t, 4000) > shift.shift(t, 1000)
    start = shift.logsnr_start(4000)
    assert math.isclose(start, -6.2 - 1.0)


def test_init_noise_level_range():
    assert check_init_noise_level(1) == 1.0 and check_init_noise_level(0.3) == 0.3
    for bad in (0, 0.0, -0.2, 1.01, float("nan"), "0.5", None):
        with pytest.raises(ValueError, match="init_noise_level"):
            check_init_noise_level(bad)
