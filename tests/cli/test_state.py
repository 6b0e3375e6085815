"""Training-state checkpoints: `step --save-state` then `step --load-state` continues the run
bit-exactly (the losses in the JSON equal an uninterrupted run's), reports the write and read
cost, and refuses files it cannot continue from with one line naming the value."""
import json

import pytest

from tbcli import TINY, assert_one_line_error, read_safetensors, run, write_bytes_tokens

STEP = ["step", *TINY, "--batch", "2", "--eval-batches", "0"]


def step_json(trainbench, tmp_path, name, *args):
    out = tmp_path / f"{name}.json"
    proc = run(trainbench, *STEP, *args, "--json", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    return json.loads(out.read_text())


def losses(j):
    return j["loss"]["train_per_step"]


@pytest.mark.parametrize("extra", [
    [],
    ["--optimizer", "sgd"],
    ["--precision", "fp16"],  # dynamic loss scaling: the scale carries
    ["--lr-schedule", "cosine", "--lr-warmup-steps", "2", "--lr-total-steps", "6"],
], ids=["adamw", "sgd", "fp16", "cosine"])
def test_resume_reproduces_the_uninterrupted_losses(trainbench, tmp_path, extra):
    state = tmp_path / "s.safetensors"
    whole = step_json(trainbench, tmp_path, "whole", "--steps", 6, "--warmup", 0, *extra)
    first = step_json(trainbench, tmp_path, "first", "--steps", 3, "--warmup", 0, *extra,
                      "--save-state", state)
    second = step_json(trainbench, tmp_path, "second", "--steps", 3, *extra,
                       "--load-state", state)
    assert len(losses(whole)) == 6
    assert losses(first) + losses(second) == losses(whole)  # exactly, not approximately
    lrs = first["training"]["lr_per_step"] + second["training"]["lr_per_step"]
    assert lrs == whole["training"]["lr_per_step"]
    assert second["training"]["steps_before"] == 3
    assert second["training"]["loss_scale"] == whole["training"]["loss_scale"]
    assert second["training"]["skipped_steps"] == whole["training"]["skipped_steps"]


def test_warmup_steps_train_and_a_resumed_run_skips_warmup(trainbench, tmp_path):
    # --warmup 3 (the default): `--steps 6` trains 9 steps; `--steps 3` trains 6, and the run
    # resumed from it defaults to --warmup 0, so 3 more make the same 9.
    state = tmp_path / "s.safetensors"
    whole = step_json(trainbench, tmp_path, "whole", "--steps", 6)
    first = step_json(trainbench, tmp_path, "first", "--steps", 3, "--save-state", state)
    second = step_json(trainbench, tmp_path, "second", "--steps", 3, "--load-state", state)
    assert second["training"]["warmup_steps"] == 0
    assert second["state"]["load"]["steps_run"] == 6
    assert losses(first) + losses(second) == losses(whole)


def test_state_json_reports_bytes_and_seconds(trainbench, tmp_path):
    state = tmp_path / "s.safetensors"
    saved = step_json(trainbench, tmp_path, "save", "--steps", 2, "--warmup", 1,
                      "--save-state", state)
    s = saved["state"]["save"]
    assert s["bytes"] == state.stat().st_size
    assert s["seconds"] > 0
    assert s["bytes_per_s"] == pytest.approx(s["bytes"] / s["seconds"])
    assert s["step"] == 3 and s["steps_run"] == 3
    assert "load" not in saved["state"]
    loaded = step_json(trainbench, tmp_path, "load", "--steps", 1, "--load-state", state)
    assert loaded["state"]["load"]["bytes"] == state.stat().st_size
    assert loaded["state"]["load"]["seconds"] > 0
    assert "save" not in loaded["state"]
    assert "state" not in step_json(trainbench, tmp_path, "plain", "--steps", 1)


def test_state_file_holds_weights_optimizer_and_metadata(trainbench, tmp_path):
    state = tmp_path / "s.safetensors"
    step_json(trainbench, tmp_path, "save", "--steps", 2, "--warmup", 0, "--save-state", state)
    header, _ = read_safetensors(state)
    meta = header["__metadata__"]
    assert meta["format"] == "trainbench-state"
    assert meta["d_model"] == "32" and meta["optimizer"] == "adamw" and meta["step"] == "2"
    assert {"data.rng.s0", "loss_scaling.scale", "precision"} <= meta.keys()
    assert header["wte"]["shape"] == [64, 32]
    assert header["optimizer.m.wte"]["shape"] == [64, 32]
    assert header["optimizer.v.blocks.0.attn.qkv.weight"]["shape"] == [96, 32]
    # It is also a weights file: eval reads it.
    data = write_bytes_tokens(tmp_path / "tokens.bin", 4000, 64)
    proc = run(trainbench, "eval", "--load-weights", state, "--data", data, "--seq", 16)
    assert proc.returncode == 0, proc.stderr


# ---- files it cannot continue from ----

def test_load_state_of_a_missing_file(trainbench, tmp_path):
    missing = tmp_path / "absent.safetensors"
    proc = run(trainbench, *STEP, "--steps", 1, "--load-state", missing)
    assert_one_line_error(proc, str(missing), "state file")


def test_load_state_of_another_model_shape(trainbench, tmp_path):
    state = tmp_path / "s.safetensors"
    step_json(trainbench, tmp_path, "save", "--steps", 1, "--warmup", 0, "--save-state", state)
    wide = [a if a != "32" else "64" for a in STEP]  # --d-model 64
    proc = run(trainbench, *wide, "--steps", 1, "--load-state", state)
    assert_one_line_error(proc, str(state), "d_model = 32", "d_model = 64")


def test_load_state_of_a_weights_file(trainbench, tmp_path):
    weights = tmp_path / "w.safetensors"
    step_json(trainbench, tmp_path, "save", "--steps", 1, "--warmup", 0, "--save-weights", weights)
    proc = run(trainbench, *STEP, "--steps", 1, "--load-state", weights)
    assert_one_line_error(proc, str(weights), "weights file", "no optimizer state",
                          "--save-state", "--load-weights")


def test_load_state_of_another_optimizer(trainbench, tmp_path):
    state = tmp_path / "s.safetensors"
    step_json(trainbench, tmp_path, "save", "--steps", 1, "--warmup", 0, "--save-state", state)
    proc = run(trainbench, *STEP, "--steps", 1, "--optimizer", "sgd", "--load-state", state)
    assert_one_line_error(proc, "optimizer = adamw", "optimizer = sgd")


def test_load_state_of_a_file_that_is_not_safetensors(trainbench, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    proc = run(trainbench, *STEP, "--steps", 1, "--load-state", bad)
    assert_one_line_error(proc, str(bad), "header length")


def test_load_state_excludes_load_weights(trainbench, tmp_path):
    proc = run(trainbench, *STEP, "--steps", 1, "--load-state", tmp_path / "s",
               "--load-weights", tmp_path / "w")
    assert_one_line_error(proc, "--load-state", "--load-weights")


def test_save_state_to_an_unwritable_path(trainbench, tmp_path):
    target = tmp_path / "no" / "such" / "dir" / "s.safetensors"
    proc = run(trainbench, *STEP, "--steps", 1, "--warmup", 0, "--save-state", target)
    assert_one_line_error(proc, str(target))
