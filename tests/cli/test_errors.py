"""Bad input to trainbench: a non-zero exit and one stderr line that names the bad value."""
import json

import pytest

from tbcli import TINY, assert_one_line_error, read_safetensors, run, write_bytes_tokens, \
    write_safetensors

STEP = ["step", *TINY, "--batch", "2", "--steps", "1", "--warmup", "0", "--eval-batches", "0"]


def with_flag(args, flag, value):
    """args with flag's value replaced (or appended): CLI11 rejects a repeated flag."""
    out = list(args)
    if flag in out:
        out[out.index(flag) + 1] = value
    else:
        out += [flag, value]
    return out


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    return write_bytes_tokens(tmp_path_factory.mktemp("data") / "tokens.bin", 4000, 64)


# ---- model shape ----

def test_unknown_preset(trainbench):
    line = assert_one_line_error(run(trainbench, "step", "--preset", "gpt3-999b"), "gpt3-999b")
    for known in ("gpt3-125m", "gpt3-1.3b", "gpt3-175b"):
        assert known in line  # it says what was expected


def test_unknown_preset_with_proxy_flags(trainbench):
    assert_one_line_error(run(trainbench, *with_flag(STEP, "--preset", "gpt-4")), "'gpt-4'")


def test_heads_not_dividing_width(trainbench):
    proc = run(trainbench, "step", "--d-model", "100", "--heads", "3", "--layers", "1")
    assert_one_line_error(proc, "heads = 3", "d_model = 100")


@pytest.mark.parametrize("flag,value,named", [
    ("--layers", "0", "layers = 0"),
    ("--layers", "-2", "layers = -2"),
    ("--d-model", "-8", "d_model = -8"),
    ("--d-model", "0", "d_model = 0"),
    ("--heads", "0", "heads = 0"),
    ("--seq", "0", "seq_len = 0"),
    ("--vocab", "0", "vocab = 0"),
    ("--batch", "-1", "--batch = -1"),
    ("--batch", "0", "--batch = 0"),
    ("--steps", "0", "--steps = 0"),
    ("--warmup", "-1", "--warmup = -1"),
    ("--eval-batches", "-3", "--eval-batches = -3"),
    ("--threads", "-3", "--threads = -3"),
    ("--width-scale", "0", "width_scale"),
    ("--width-scale", "-1.5", "width_scale"),
])
def test_non_positive_sizes(trainbench, flag, value, named):
    line = assert_one_line_error(run(trainbench, *with_flag(STEP, flag, value)), named)
    assert "expected" in line


@pytest.mark.parametrize("flag,value", [
    ("--layers", "abc"), ("--steps", "1.5"), ("--batch", "four"), ("--seq", "99999999999"),
    ("--vocab", "1e3"), ("--heads", "5abc"), ("--seed", "-x"),
])
def test_non_numeric_integer_flag(trainbench, flag, value):
    assert_one_line_error(run(trainbench, *with_flag(STEP, flag, value)), flag, value)


def test_empty_integer_flag(trainbench):
    # CLI11 reads an empty integer as 0, which validation then rejects by name.
    assert_one_line_error(run(trainbench, *with_flag(STEP, "--vocab", "")), "vocab = 0")


def test_non_numeric_eval_flag(trainbench, tmp_path):
    proc = run(trainbench, "eval", "--load-weights", tmp_path / "w", "--data", tmp_path / "d",
               "--seq", "sixteen")
    assert_one_line_error(proc, "--seq", "sixteen")


def test_missing_flag_value(trainbench):
    assert_one_line_error(run(trainbench, "step", "--layers"), "--layers")


def test_unknown_flag(trainbench):
    assert_one_line_error(run(trainbench, "step", "--bogus", "1"), "--bogus")


def test_no_subcommand(trainbench):
    assert_one_line_error(run(trainbench))


def test_unknown_subcommand(trainbench):
    assert_one_line_error(run(trainbench, "train"), "train")


@pytest.mark.parametrize("missing", ["--load-weights", "--data", "--seq"])
def test_eval_required_flags(trainbench, tmp_path, missing):
    args = {"--load-weights": str(tmp_path / "w"), "--data": str(tmp_path / "d"), "--seq": "16"}
    del args[missing]
    assert_one_line_error(run(trainbench, "eval", *[x for kv in args.items() for x in kv]),
                          missing)


# ---- device and data ----

def test_unknown_device(trainbench):
    line = assert_one_line_error(run(trainbench, *STEP, "--device", "tpu"), "'tpu'")
    assert "cpu" in line


@pytest.mark.parametrize("with_data", [True, False])
def test_bad_data_format_step(trainbench, data_file, with_data):
    args = [*STEP, "--data-format", "u32"] + (["--data", data_file] if with_data else [])
    line = assert_one_line_error(run(trainbench, *args), "'u32'")
    assert "bytes or u16" in line


def test_bad_data_format_eval(trainbench, trained):
    proc = run(trainbench, "eval", "--load-weights", trained["weights"], "--data", trained["data"],
               "--seq", "16", "--data-format", "int8")
    assert_one_line_error(proc, "'int8'", "bytes or u16")


def test_missing_data_file(trainbench, tmp_path):
    missing = tmp_path / "no-such-dir" / "tokens.bin"
    assert_one_line_error(run(trainbench, *STEP, "--data", missing), str(missing))


def test_data_file_is_a_directory(trainbench, tmp_path):
    assert_one_line_error(run(trainbench, *STEP, "--data", tmp_path), f"'{tmp_path}'")


def test_data_file_empty(trainbench, tmp_path):
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert_one_line_error(run(trainbench, *STEP, "--data", empty), str(empty), "empty")


def test_data_file_too_small(trainbench, tmp_path):
    small = write_bytes_tokens(tmp_path / "small.bin", 100, 64)  # needs 10·(16+1) = 170
    assert_one_line_error(run(trainbench, *STEP, "--data", small), str(small), "100 tokens", "170")


def test_data_file_odd_u16(trainbench, tmp_path):
    odd = tmp_path / "odd.bin"
    odd.write_bytes(bytes(501))
    proc = run(trainbench, *STEP, "--data", odd, "--data-format", "u16")
    assert_one_line_error(proc, str(odd), "501 bytes")


def test_data_token_at_or_above_vocab_step(trainbench, tmp_path):
    tokens = bytearray(write_bytes_tokens(tmp_path / "t.bin", 4000, 64).read_bytes())
    tokens[1234] = 64  # == vocab: out of range
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(tokens))
    assert_one_line_error(run(trainbench, *STEP, "--data", bad), str(bad), "token 64",
                          "position 1234", "vocab = 64")


def test_data_token_at_or_above_vocab_eval(trainbench, trained, tmp_path):
    tokens = bytearray(trained["data"].read_bytes())
    tokens[7] = 200
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(tokens))
    proc = run(trainbench, "eval", "--load-weights", trained["weights"], "--data", bad,
               "--seq", "16")
    assert_one_line_error(proc, str(bad), "token 200", "position 7")


def test_eval_missing_and_directory_data(trainbench, trained, tmp_path):
    for data in (tmp_path / "nope" / "t.bin", tmp_path):
        proc = run(trainbench, "eval", "--load-weights", trained["weights"], "--data", data,
                   "--seq", "16")
        assert_one_line_error(proc, f"'{data}'")


@pytest.mark.parametrize("flag,value,named", [
    ("--seq", "0", "--seq = 0"), ("--seq", "17", "--seq = 17"), ("--batch", "0", "--batch = 0"),
    ("--windows", "-1", "--windows = -1"), ("--windows", "100000", "100000"),
])
def test_eval_bad_numbers(trainbench, trained, flag, value, named):
    args = {"--load-weights": str(trained["weights"]), "--data": str(trained["data"]),
            "--seq": "16"}
    args[flag] = value
    line = assert_one_line_error(run(trainbench, "eval", *[x for kv in args.items() for x in kv]),
                                 named)
    assert "expected" in line


# ---- weights files, in step (--load-weights) and eval ----

def weights_cmd(mode, weights, data):
    if mode == "step":
        return [*STEP, "--load-weights", weights]
    return ["eval", "--load-weights", weights, "--data", data, "--seq", "16"]


@pytest.fixture(params=["step", "eval"])
def mode(request):
    return request.param


def test_weights_missing(trainbench, trained, tmp_path, mode):
    w = tmp_path / "none" / "w.safetensors"
    assert_one_line_error(run(trainbench, *weights_cmd(mode, w, trained["data"])), str(w))


def test_weights_directory(trainbench, trained, tmp_path, mode):
    assert_one_line_error(run(trainbench, *weights_cmd(mode, tmp_path, trained["data"])),
                          f"'{tmp_path}'")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weights_garbage(trainbench, trained, tmp_path, mode, seed):
    import numpy as np
    w = tmp_path / "garbage.safetensors"
    w.write_bytes(np.random.default_rng(seed).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    assert_one_line_error(run(trainbench, *weights_cmd(mode, w, trained["data"])), str(w))


def test_weights_garbage_small_length(trainbench, trained, tmp_path, mode):
    # A plausible header length followed by bytes that are not JSON.
    w = tmp_path / "garbage.safetensors"
    w.write_bytes((64).to_bytes(8, "little") + b"\xff\xfe not json at all" + bytes(200))
    assert_one_line_error(run(trainbench, *weights_cmd(mode, w, trained["data"])), str(w), "JSON")


@pytest.mark.parametrize("keep", [0, 5, 100, -4])
def test_weights_truncated(trainbench, trained, tmp_path, mode, keep):
    raw = trained["weights"].read_bytes()
    w = tmp_path / "cut.safetensors"
    w.write_bytes(raw[:keep])  # negative: cut inside the tensor data
    assert_one_line_error(run(trainbench, *weights_cmd(mode, w, trained["data"])), str(w))


def test_weights_wrong_shapes_step(trainbench, trained):
    # Weights of d_model 32 into a d_model 64 model.
    proc = run(trainbench, *with_flag(with_flag(STEP, "--d-model", "64"), "--load-weights",
                                      trained["weights"]))
    assert_one_line_error(proc, str(trained["weights"]), "wte", "(64, 32)", "(64, 64)")


def test_weights_wrong_layers_step(trainbench, trained):
    proc = run(trainbench, *with_flag(with_flag(STEP, "--layers", "2"), "--load-weights",
                                      trained["weights"]))
    assert_one_line_error(proc, str(trained["weights"]), "blocks.1.")


def test_weights_wrong_shapes_eval(trainbench, trained, tmp_path):
    # A file whose metadata describes a wider model than its tensors: as if the tensors of a
    # differently-sized model had been written under this header.
    header, data = read_safetensors(trained["weights"])
    header["__metadata__"]["d_model"] = "64"
    w = write_safetensors(tmp_path / "mismatch.safetensors", header, data)
    proc = run(trainbench, "eval", "--load-weights", w, "--data", trained["data"], "--seq", "16")
    assert_one_line_error(proc, str(w), "wte", "(64, 32)", "(64, 64)")


def test_weights_wrong_dtype(trainbench, trained, tmp_path, mode):
    header, data = read_safetensors(trained["weights"])
    header["lnf.bias"]["dtype"] = "F16"
    w = write_safetensors(tmp_path / "f16.safetensors", header, data)
    assert_one_line_error(run(trainbench, *weights_cmd(mode, w, trained["data"])), str(w),
                          "lnf.bias", "F16")


def test_weights_missing_tensor(trainbench, trained, tmp_path, mode):
    header, data = read_safetensors(trained["weights"])
    del header["wpe"]
    w = write_safetensors(tmp_path / "nowpe.safetensors", header, data)
    assert_one_line_error(run(trainbench, *weights_cmd(mode, w, trained["data"])), str(w), "wpe")


def test_weights_offsets_out_of_range(trainbench, trained, tmp_path, mode):
    header, data = read_safetensors(trained["weights"])
    b, e = header["wte"]["data_offsets"]
    header["wte"]["data_offsets"] = [len(data) - 8, len(data) - 8 + (e - b)]
    w = write_safetensors(tmp_path / "offsets.safetensors", header, data)
    assert_one_line_error(run(trainbench, *weights_cmd(mode, w, trained["data"])), str(w),
                          "wte", "data_offsets")


@pytest.mark.parametrize("key,value", [("n_head", "3"), ("vocab", "-1"), ("n_layer", "x")])
def test_eval_weights_bad_metadata(trainbench, trained, tmp_path, key, value):
    header, data = read_safetensors(trained["weights"])
    header["__metadata__"][key] = value
    w = write_safetensors(tmp_path / "meta.safetensors", header, data)
    proc = run(trainbench, "eval", "--load-weights", w, "--data", trained["data"], "--seq", "16")
    assert_one_line_error(proc, str(w))


def test_eval_weights_without_metadata(trainbench, trained, tmp_path):
    header, data = read_safetensors(trained["weights"])
    del header["__metadata__"]
    w = write_safetensors(tmp_path / "nometa.safetensors", header, data)
    proc = run(trainbench, "eval", "--load-weights", w, "--data", trained["data"], "--seq", "16")
    assert_one_line_error(proc, str(w), "__metadata__")


# ---- output paths ----

def test_json_path_unwritable(trainbench, tmp_path):
    out = tmp_path / "no-such-dir" / "out.json"
    assert_one_line_error(run(trainbench, *STEP, "--json", out), str(out))


def test_save_weights_unwritable(trainbench, tmp_path):
    out = tmp_path / "no-such-dir" / "w.safetensors"
    assert_one_line_error(run(trainbench, *STEP, "--save-weights", out), str(out))
    assert_one_line_error(run(trainbench, *STEP, "--save-weights", tmp_path), str(tmp_path))


def test_errors_leave_no_json(trainbench, tmp_path):
    out = tmp_path / "out.json"
    assert_one_line_error(run(trainbench, *with_flag(STEP, "--layers", "0"), "--json", out))
    assert not out.exists()


# ---- precision ----

@pytest.mark.parametrize("flag,value", [("--precision", "fp4"), ("--precision", "FP16"),
                                        ("--loss-scaling", "static")])
def test_bad_precision_flags(trainbench, flag, value):
    assert_one_line_error(run(trainbench, *with_flag(STEP, flag, value)), flag, value)


def test_cuda_without_a_gpu_is_one_line(trainbench):
    info = json.loads(run(trainbench, "info").stdout)
    if info["gpus"]:
        pytest.skip("a GPU is present: --device cuda runs")
    assert_one_line_error(run(trainbench, *with_flag(STEP, "--device", "cuda")), "device cuda")
