"""Hyperparameter search (``prosumer_gym.train.optimize``, ``prosumer-gym-train --optimize``):
SQLite study + best-hyperparameter YAML, resuming to ``n_trials`` in total, pruning that stops
training, a killed trial retried, the CLI end to end, seeded sampling, and the search spaces
producing valid SB3 keyword arguments."""

from __future__ import annotations

import inspect
import time

import numpy as np
import optuna
import pytest
import yaml

from prosumer_gym.train import cli
from prosumer_gym.train.common import resolve_env
from prosumer_gym.train.optimize import (
    OPTIMIZE_ALGOS,
    action_noise_kwargs,
    make_pruner,
    make_sampler,
    optimize,
    sample_hyperparams,
)

SPEC = resolve_env("P2PTrading-v0")
SMALL = dict(n_sellers=2, n_buyers=2, n_days=10)
FIXED = {"n_steps": 16}  # rollouts of 16 steps: a trial of 64 timesteps is 4 PPO updates
States = optuna.trial.TrialState


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def _run(tmp_path, n_trials, **kw):
    args = dict(n_timesteps=64, storage=f"sqlite:///{tmp_path / 'study.db'}", out_dir=tmp_path / "out",
                env_kwargs=SMALL, fixed=FIXED, n_eval_episodes=2, n_evaluations=2, progress=False)
    args.update(kw)
    return optimize(SPEC, "ppo", "gym", n_trials=n_trials, **args)


def _ppo_kwargs() -> set[str]:
    from stable_baselines3 import PPO

    return set(inspect.signature(PPO.__init__).parameters) - {"self", "policy", "env"}


def test_study_writes_sqlite_best_yaml_and_trials_table(tmp_path, capsys):
    study = _run(tmp_path, 2)
    assert (tmp_path / "study.db").is_file()
    assert study.study_name == "P2PTrading-v0-ppo-gym"
    assert [t.state for t in study.trials] == [States.COMPLETE, States.COMPLETE]
    for t in study.trials:  # periodic evaluations reported at SB3 timesteps 32 and 64
        assert sorted(t.intermediate_values) == [32, 64]
        assert t.user_attrs["num_timesteps"] == 64
    # the storage holds it: a fresh handle sees the same trials
    again = optuna.load_study(study_name=study.study_name, storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert [t.value for t in again.trials] == [t.value for t in study.trials]

    doc = yaml.safe_load((tmp_path / "out" / "best_ppo.yml").read_text())
    assert list(doc) == ["ppo"]
    best = doc["ppo"]
    assert best == {**FIXED, **study.best_trial.user_attrs["hyperparams"]}  # fixed entries + sampled ones
    assert study.best_value == max(t.value for t in study.trials)
    assert set(best) <= _ppo_kwargs()  # valid PPO keyword arguments, YAML form
    assert {"learning_rate", "batch_size", "gamma", "gae_lambda", "ent_coef", "clip_range", "n_epochs",
            "policy_kwargs"} <= set(best)
    assert "n_steps" not in study.best_trial.params and best["n_steps"] == 16  # fixed: not searched, carried over
    assert best["batch_size"] <= FIXED["n_steps"]  # a minibatch fits one rollout (n_steps * n_envs)
    assert best["policy_kwargs"]["net_arch"] in ([64, 64], [256, 256])
    rows = (tmp_path / "out" / "trials.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and rows[0].startswith("number,value")
    out = capsys.readouterr().out
    assert "2 trials (2 complete, 0 pruned" in out and f"best trial {study.best_trial.number}" in out

    # merged into the section, the values train through train_sb3 unchanged (1:1 transfer)
    from prosumer_gym.train.sb3 import train_sb3

    model = train_sb3(SPEC, "ppo", "gym", tmp_path / "train", total_steps=16, env_kwargs=SMALL,
                      algo_kwargs=best, progress=False)
    assert (model.learning_rate, model.n_steps, model.batch_size, model.gamma, model.n_epochs) == (
        best["learning_rate"], 16, best["batch_size"], best["gamma"], best["n_epochs"])


def test_resumed_study_continues_to_n_trials_in_total(tmp_path):
    first = _run(tmp_path, 2)
    before = [(t.number, t.params, t.value) for t in first.trials]
    study = _run(tmp_path, 3)
    assert len(study.trials) == 3  # not 2 + 3
    assert [(t.number, t.params, t.value) for t in study.trials[:2]] == before  # kept, not rerun
    assert study.trials[2].state == States.COMPLETE
    assert study.trials[2].params != study.trials[0].params  # the resumed sampler does not replay trial 0
    assert len(_run(tmp_path, 3).trials) == 3  # done: nothing more to run
    with pytest.raises(ValueError, match="other settings.*n_timesteps"):
        _run(tmp_path, 4, n_timesteps=32)  # another objective in the same study is refused


def test_trial_left_running_by_a_killed_search_is_failed_and_retried(tmp_path):
    study = _run(tmp_path, 1, heartbeat_interval=1)
    storage = study._storage
    with pytest.warns(UserWarning, match="Heartbeat"):  # Optuna: ask() is not optimize()
        killed = study.ask()  # a trial that was running when its process died
    killed.suggest_float("learning_rate", 1e-5, 1e-2, log=True)
    storage.record_heartbeat(killed._trial_id)
    time.sleep(3.1)  # silent for longer than the grace period (2 heartbeats; SQLite's clock has 1 s steps)
    study = _run(tmp_path, 2, heartbeat_interval=1)
    states = [t.state for t in study.trials]
    assert states[:2] == [States.COMPLETE, States.FAIL]
    retry = study.trials[2]  # the killed trial's hyperparameters tried again
    assert retry.state == States.COMPLETE and retry.params["learning_rate"] == killed.params["learning_rate"]
    assert sum(s in (States.COMPLETE, States.PRUNED) for s in states) == 2


def test_pruned_trials_stop_training_early(tmp_path, capsys):
    prune_all = optuna.pruners.ThresholdPruner(lower=1e18)  # every reported return is below it
    study = _run(tmp_path, 2, n_timesteps=128, n_evaluations=4, pruner=prune_all)
    assert [t.state for t in study.trials] == [States.PRUNED, States.PRUNED]
    for t in study.trials:
        assert list(t.intermediate_values) == [32]  # the first evaluation, then stopped
        assert t.user_attrs["num_timesteps"] == 32 < 128  # SB3 stopped learning there
    assert not (tmp_path / "out" / "best_ppo.yml").exists()  # no complete trial, no best
    assert "0 complete, 2 pruned" in capsys.readouterr().out
    median = make_pruner("median", n_startup_trials=3, n_warmup_steps=40)
    assert isinstance(median, optuna.pruners.MedianPruner)
    assert (median._n_startup_trials, median._n_warmup_steps) == (3, 40)
    assert isinstance(make_pruner("none"), optuna.pruners.NopPruner)
    assert isinstance(make_sampler("random", 1), optuna.samplers.RandomSampler)
    assert isinstance(make_sampler("tpe", 1), optuna.samplers.TPESampler)


def test_cli_optimize_end_to_end(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["--optimize", "--env", "P2PTrading-v0", "--algo", "ppo", "--env-kwargs", "n_sellers=2", "n_buyers=2",
            "n_days=10", "--hyperparams", "n_steps=16", "--n-trials", "2", "--n-timesteps", "32",
            "--n-eval-episodes", "1", "--n-evaluations", "1", "--sampler", "random", "--pruner", "none",
            "--out", str(out), "--no-progress"]
    assert cli.main(args) == 0
    assert (tmp_path / "cli.db").is_file()  # default storage: beside the output folder
    best = yaml.safe_load((out / "best_ppo.yml").read_text())["ppo"]
    assert set(best) <= _ppo_kwargs() and best["n_steps"] == 16 and best["batch_size"] <= 16
    assert (out / "trials.csv").is_file()
    printed = capsys.readouterr().out
    assert "P2PTrading-v0-ppo-gym: 2 trials (2 complete" in printed and "best hyperparameters" in printed
    study = optuna.load_study(study_name="P2PTrading-v0-ppo-gym", storage=f"sqlite:///{tmp_path / 'cli.db'}")
    ident = study.user_attrs["identity"]
    assert ident["env_kwargs"] == {**SMALL} and ident["n_timesteps"] == 32 and ident["fixed"] == {"n_steps": 16}
    assert ident["base"]["gamma"] == 0.8  # the YAML section is the base; sampled values override it

    for bad in (["--optimize", "--algo", "pqr"], ["--n-trials", "3", "--algo", "ppo"],
                ["--optimize", "--backend", "rllib"], ["--optimize", "--algo", "ppo", "--total-steps", "10"],
                ["--optimize", "--algo", "ppo", "--n-trials", "0"]):
        with pytest.raises(SystemExit):
            cli.main(bad + ["--out", str(tmp_path / "bad")])
    assert not (tmp_path / "bad").exists()


def test_same_seed_same_first_trial(tmp_path):
    def first(seed, name):
        s = _run(tmp_path / name, 1, seed=seed, n_timesteps=16, n_evaluations=0, n_eval_episodes=1)
        return s.trials[0]

    a, b, c = first(0, "a"), first(0, "b"), first(1, "c")
    assert a.params == b.params and a.user_attrs["hyperparams"] == b.user_attrs["hyperparams"]
    assert a.value == b.value  # training and evaluation are seeded too
    assert a.params != c.params


@pytest.mark.parametrize("algo", OPTIMIZE_ALGOS)
def test_search_spaces_give_valid_sb3_kwargs(algo):
    import stable_baselines3 as sb3
    from gymnasium import spaces

    cls = {"ppo": sb3.PPO, "a2c": sb3.A2C, "dqn": sb3.DQN, "sac": sb3.SAC, "td3": sb3.TD3}[algo]
    accepted = set(inspect.signature(cls.__init__).parameters)
    study = optuna.create_study(sampler=make_sampler("random", seed=3))
    box = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
    for _ in range(25):
        trial = study.ask()
        kw = sample_hyperparams(trial, algo, n_envs=2)
        sb3_kw = action_noise_kwargs(kw, box)
        assert set(sb3_kw) <= accepted, set(sb3_kw) - accepted
        assert kw["policy_kwargs"]["net_arch"] and 1e-5 <= kw["learning_rate"] <= 1e-2
        if algo == "ppo":
            assert kw["batch_size"] <= kw["n_steps"] * 2
        if algo == "td3":
            noise = sb3_kw["action_noise"]
            assert np.allclose(noise._sigma, kw["noise_std"]) and noise._sigma.shape == (2,)
        study.tell(trial, 0.0)
    fixed = sample_hyperparams(study.ask(), algo, fixed={"learning_rate": 1e-3, "policy_kwargs": {"net_arch": [8]}})
    assert "learning_rate" not in fixed and "policy_kwargs" not in fixed  # fixed keys are not searched
    with pytest.raises(ValueError, match="tunes the SB3 algorithms"):
        sample_hyperparams(study.ask(), "pqr")


def test_tuning_seeds_are_not_the_boards_held_out_seeds():
    """The search evaluates its trials on seeds no leaderboard track reports (nothing is tuned
    on a reported seed), for any search seed a user is likely to pass."""
    from prosumer_gym.eval.leaderboard.core import HELD_OUT_SEED_BASE, track, track_ids
    from prosumer_gym.train.optimize import EVAL_SEED_OFFSET

    board = {HELD_OUT_SEED_BASE + k for env_id in track_ids() for k in range(track(env_id).n_seeds)}
    tuning = {seed + EVAL_SEED_OFFSET + k for seed in range(1000) for k in range(100)}
    assert board and not board & tuning


def test_track_objective_scores_trials_by_the_boards_composite_on_tuning_scenarios(tmp_path):
    """``objective="track"``: a trial's value is the track's composite (baseline 0, top 100)
    of the trial's exported policy on the tuning scenarios, recomputed independently here
    from the saved export; the references are cached and the reported scenarios unused."""
    from prosumer_gym.eval.leaderboard.core import HELD_OUT_SEED_BASE, track
    from prosumer_gym.eval.leaderboard.tuning import TrackObjective

    spec = resolve_env("StorageSharing-v0")
    study = optimize(spec, "ppo", "gym", n_trials=1, n_timesteps=48, storage=f"sqlite:///{tmp_path / 's.db'}",
                     out_dir=tmp_path / "out", fixed={"n_steps": 24, "batch_size": 24}, n_eval_episodes=2,
                     n_evaluations=0, progress=False, objective="track", role="auctioneer", report=False)
    (trial,) = study.trials
    assert trial.state == States.COMPLETE
    cache = tmp_path / "out" / "tuning_references.json"
    scorer = TrackObjective("StorageSharing-v0", 2, cache=cache)  # reads the cache written by the study
    assert all(min(e["seeds"]) >= HELD_OUT_SEED_BASE + 1_000_000 for e in scorer.references)
    assert [e["name"] for e in scorer.references] == [track("StorageSharing-v0").baseline, "se"]
    scores = scorer.scores(f"exported:{tmp_path / 'out' / 'trials' / 'trial_0' / 'policy.pt'}", {"role": "auctioneer"})
    assert scores.shape == (2,) and np.isfinite(scores).all()
    assert trial.value == pytest.approx(float(scores.mean()), rel=0, abs=1e-9)
    # the scale: the baseline scores 0 on every tuning scenario, the top reference 100 on average
    assert np.allclose(scorer.scores("equal_distribution"), 0.0)
    assert scorer("se") == pytest.approx(100.0, abs=1e-9) and np.ptp(scorer.scores("se")) > 0
    with pytest.raises(ValueError, match="objective must be one of"):
        _run(tmp_path / "bad", 1, objective="board")


def test_search_with_our_pair_scorer_policy_keeps_its_network_and_samples_no_net_arch(tmp_path):
    """A section naming one of our policy classes (PairScorerPolicy, P2PRecommendation-v1's
    ppo-pairs) is searched with that class and its ``policy_kwargs`` fixed (an MLP ``net_arch``
    means nothing to it): the best values, merged into the section, keep its network."""
    from prosumer_gym.train.pair_policy import PairScorerPolicy

    seen = []
    orig = PairScorerPolicy.__init__

    def spy(self, *a, **kw):
        seen.append(kw.get("hidden"))
        orig(self, *a, **kw)

    section = {"policy": "PairScorerPolicy", "normalize": True, "flatten_obs": False, "n_steps": 16,
               "batch_size": 16, "n_epochs": 1, "policy_kwargs": {"hidden": 8}}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(PairScorerPolicy, "__init__", spy)
        study = optimize(resolve_env("P2PRecommendation-v1"), "ppo", "gym", n_trials=1, n_timesteps=32,
                         storage=f"sqlite:///{tmp_path / 'study.db'}", out_dir=tmp_path / "out",
                         env_kwargs={"n_producers": 3, "n_consumers": 2, "n_days": 4, "oracle": False},
                         hyperparams=section, fixed={"n_steps": 16, "batch_size": 16}, n_eval_episodes=1,
                         n_evaluations=1, progress=False, report=False)
    assert seen == [8]  # the pair scorer was built with the section's network
    (trial,) = study.trials
    assert trial.state == States.COMPLETE and "net_arch" not in trial.params
    best = yaml.safe_load((tmp_path / "out" / "best_ppo.yml").read_text())["ppo"]
    assert "policy_kwargs" not in best and "learning_rate" in best  # merged into the section, its network stays


def test_ppo_with_many_envs_searches_minibatches_per_rollout():
    """Parameter sharing gives one env per agent (40 EUber workers): PPO's minibatch is drawn
    as a number of minibatches per rollout, not an absolute size from 8 (which would mean up
    to 160 minibatches per epoch); one env keeps the Zoo's absolute batch sizes."""
    from prosumer_gym.train.optimize import MINIBATCHES

    study = optuna.create_study(sampler=make_sampler("random", seed=5))
    for _ in range(20):
        trial = study.ask()
        kw = sample_hyperparams(trial, "ppo", n_envs=40)
        k = trial.params["n_minibatches"]
        assert k in MINIBATCHES and "batch_size" not in trial.params
        assert kw["batch_size"] == kw["n_steps"] * 40 // k
        study.tell(trial, 0.0)
    one = study.ask()
    kw = sample_hyperparams(one, "ppo", n_envs=1)
    assert "batch_size" in one.params and "n_minibatches" not in one.params
    assert kw["batch_size"] <= kw["n_steps"]


def test_reevaluating_the_top_trials_chooses_by_the_mean_over_training_seeds(tmp_path, capsys):
    """``reevaluate_top=2, reevaluate_seeds=1``: the two best trials are trained again with
    training seed 1 (a trial's own run is seed 0); the YAML takes the trial with the best mean
    over both seeds; a re-run value equals a fresh trial of those hyperparameters on seed 1;
    resuming does not train again."""
    from prosumer_gym.train.optimize import chosen_trial

    study = _run(tmp_path, 3, reevaluate_top=2, reevaluate_seeds=1)
    re = study.user_attrs["reevaluation"]
    complete = sorted((t for t in study.trials if t.state == States.COMPLETE), key=lambda t: -t.value)
    assert sorted(re) == sorted(str(t.number) for t in complete[:2])
    for num, rec in re.items():
        assert rec["seeds"] == [0, 1] and rec["values"][0] == study.trials[int(num)].value
    means = {int(k): np.mean(v["values"]) for k, v in re.items()}
    best, value, n = chosen_trial(study)
    assert best.number == max(means, key=lambda k: (means[k], -k)) and value == means[best.number] and n == 2
    section = yaml.safe_load((tmp_path / "out" / "best_ppo.yml").read_text())["ppo"]
    assert section["learning_rate"] == best.user_attrs["hyperparams"]["learning_rate"]
    assert "mean over 2 training seeds" in (tmp_path / "out" / "best_ppo.yml").read_text()
    # the re-evaluation is the same training as a search on seed 1 with these values fixed
    hp = {**FIXED, **best.user_attrs["hyperparams"]}
    fresh = optimize(SPEC, "ppo", "gym", n_trials=1, n_timesteps=64, storage=f"sqlite:///{tmp_path / 'one.db'}",
                     out_dir=tmp_path / "one", env_kwargs=SMALL, fixed=hp, n_eval_episodes=2, n_evaluations=2,
                     progress=False, seed=1, report=False)
    assert fresh.trials[0].value == pytest.approx(re[str(best.number)]["values"][1], rel=1e-9, abs=1e-9)
    capsys.readouterr()
    again = _run(tmp_path, 3, reevaluate_top=2, reevaluate_seeds=1)
    assert again.user_attrs["reevaluation"] == re and "re-evaluated trial" not in capsys.readouterr().err
    with pytest.raises(ValueError, match="reevaluate_top"):
        _run(tmp_path, 3, reevaluate_top=-1, reevaluate_seeds=1)
