"""The scale steps as data: keys, deployments, and what each step is compared with."""

from bench import scale
from bench.scenarios import CHAT_PATH


def steps() -> dict[str, scale.ScaleStep]:
    return {step.name: step for step in scale.STEPS}


def test_scale_key_secrets_are_stable_and_distinct():
    secrets = [scale.scale_key_secret(index) for index in range(scale.ALL_KEYS)]

    assert scale.scale_key_secret(42) == scale.scale_key_secret(42)
    assert len(set(secrets)) == scale.ALL_KEYS
    assert all(secret.startswith("sk-") for secret in secrets[:10])


def test_the_key_steps_compare_10_with_100000_keys_warm_and_cold():
    defined = steps()

    assert len(defined["keys-10"].keys) == 10 and defined["keys-10"].warm
    assert len(defined["keys-100k-warm"].keys) == 1_000 and defined["keys-100k-warm"].warm
    assert not defined["keys-100k-cold"].warm
    assert defined["keys-100k-warm"].grow == "keys"
    assert defined["keys-100k-warm"].baseline == defined["keys-100k-cold"].baseline == "keys-10"


def test_the_cold_keys_were_never_used_before_and_all_exist():
    defined = steps()
    used_before = set(defined["keys-10"].keys) | set(defined["keys-100k-warm"].keys)
    cold = defined["keys-100k-cold"].keys

    assert used_before.isdisjoint(cold)
    assert cold.stop <= scale.ALL_KEYS
    assert len(cold) > 10 * 2_000  # more than a 10 s run sends at the rates seen here


def test_the_deployment_steps_compare_5_with_1000_deployments():
    defined = steps()

    assert defined["deployments-1000"].grow == "deployments"
    assert defined["deployments-1000"].baseline == "deployments-5"
    assert (scale.BASE_DEPLOYMENTS, scale.ALL_DEPLOYMENTS) == (5, 1_000)


def test_every_baseline_is_measured_before_the_step_compared_with_it():
    order = [step.name for step in scale.STEPS]

    for step in scale.STEPS:
        if step.baseline:
            assert order.index(step.baseline) < order.index(step.name)


def test_steps_select_keeps_the_parts_asked_for():
    assert [step.part for step in scale.steps_select({"deployments"})] == ["deployments", "deployments"]
    assert scale.steps_select(set(scale.PARTS)) == scale.STEPS


def test_a_scale_request_asks_for_the_scale_group_with_the_steps_keys():
    step = steps()["keys-10"]

    request = scale.scale_request("http://g", step)

    assert request.url == "http://g" + CHAT_PATH
    assert b'"model":"bench-scale"' in request.body
    assert request.keys == tuple(scale.scale_key_secret(index) for index in range(10))
    assert request.headers["Authorization"].startswith("Bearer sk-bench-0")  # the probe's key
