#!/usr/bin/python3
"""`trainbench comm` end to end (ctest parallel_comm_cli): under mpirun -np NP over small sizes
it exits 0 and its JSON has every collective at every size, each checked (wrong == 0), with
algbw = S/t and busbw = algbw x nccl-tests' factor; --device cuda is either a one-line error
(no GPU, or a build without NCCL) or a checked NCCL run; bad flags are one-line errors."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

FACTORS = {  # nccl-tests doc/PERFORMANCE.md
    "all_reduce": lambda n: 2 * (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
    "send_recv": lambda n: 1.0,
}


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def run(cmd, timeout=600):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1")
    print("$ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    sys.stdout.write(p.stdout)
    sys.stdout.write(p.stderr)
    return p


def trainbench_errors(stderr):
    return [line for line in stderr.splitlines() if line.startswith("trainbench: error:")]


def check_results(doc, np, device, max_bytes):
    if doc.get("schema") != "trainbench-comm/1":
        fail("schema %r" % doc.get("schema"))
    if doc["world_size"] != np or doc["device"] != device:
        fail("world_size %r device %r" % (doc["world_size"], doc["device"]))
    if "environment" not in doc:
        fail("no environment")
    rows = doc["results"]
    for c, factor in FACTORS.items():
        sizes = sorted(r["bytes"] for r in rows if r["collective"] == c)
        want = []
        s = 8
        while s <= max_bytes:
            chunks = np if c in ("reduce_scatter", "all_gather", "all_to_all") else 1
            e = s // 4 // chunks * chunks
            if e:
                want.append(e * 4)
            s *= 2
        if sizes != want:
            fail("%s sizes %s, expected %s" % (c, sizes, want))
    for r in rows:
        if r["wrong"] != 0:
            fail("%s at %d B: %d wrong" % (r["collective"], r["bytes"], r["wrong"]))
        if r["dtype"] != "f32" or r["elements"] * 4 != r["bytes"] or not r["time_s"] > 0:
            fail("row %r" % r)
        algbw = r["bytes"] / r["time_s"] / 1e9
        if abs(r["algbw_GBps"] - algbw) > 1e-9 * max(1.0, algbw):
            fail("algbw %r, expected %r" % (r["algbw_GBps"], algbw))
        busbw = algbw * FACTORS[r["collective"]](np)
        if abs(r["busbw_GBps"] - busbw) > 1e-9 * max(1.0, busbw):
            fail("busbw %r, expected %r" % (r["busbw_GBps"], busbw))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mpiexec", required=True)
    ap.add_argument("--trainbench", required=True)
    ap.add_argument("--np", type=int, default=2)
    a = ap.parse_args()
    mpirun = [a.mpiexec, "-n", str(a.np), "--oversubscribe", "--bind-to", "none"]
    max_bytes = 65536
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "comm.json")
        p = run(mpirun + [a.trainbench, "comm", "--max-bytes", str(max_bytes), "--iters", "3",
                          "--warmup", "1", "--json", out])
        if p.returncode != 0:
            fail("exit %d" % p.returncode)
        with open(out) as f:
            check_results(json.load(f), a.np, "cpu", max_bytes)
        if p.stdout.count("# all_reduce") != 1 or "#wrong" not in p.stdout:
            fail("table: one block per collective, printed once (rank 0)")

        # --device cuda: a checked NCCL run when every rank has a GPU, else one line.
        out = os.path.join(tmp, "cuda.json")
        p = run(mpirun + [a.trainbench, "comm", "--device", "cuda", "--max-bytes", "4096",
                          "--iters", "2", "--warmup", "1", "--json", out])
        if p.returncode == 0:
            with open(out) as f:
                doc = json.load(f)
            if doc["backend"] != "nccl":
                fail("backend %r" % doc["backend"])
            check_results(doc, a.np, "cuda", 4096)
        elif len(trainbench_errors(p.stderr)) != 1:
            fail("--device cuda failed without exactly one error line")

        # Bad flags: one line, non-zero, on one rank's behalf.
        for flags in (["--max-bytes", "3G"], ["--min-bytes", "0"], ["--iters", "0"],
                      ["--collectives", "allreduce"], ["--device", "tpu"],
                      ["--max-bytes", "8", "--min-bytes", "16"]):
            p = run(mpirun + [a.trainbench, "comm"] + flags)
            errors = trainbench_errors(p.stderr)
            if p.returncode == 0 or len(errors) != 1:
                fail("%s: exit %d, %d error lines" % (flags, p.returncode, len(errors)))
    print("OK")


if __name__ == "__main__":
    main()
