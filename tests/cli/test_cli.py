#!/usr/bin/python3
"""test_cli.py - the `lossc` binary end to end (run by ctest with Debian's
python3, which has numpy and torch).

    test_cli.py LOSSC SOURCE_DIR

- eval: inputs made here with numpy, loss and gradients compared with
  PyTorch computing the same loss in float64 from the same float32 values
  (tolerances: f32 outputs within rtol 1e-5 / atol 1e-6 of the f64 reference);
- eval errors: exit 1 and a message naming the culprit, nothing written;
- check: exit 1 and the diagnostic format on a broken file, silent on a
  clean one; ir / dot / llvm / demo / gradcheck smoke tests; usage errors
  exit 2.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

LOSSC, SRC = sys.argv[1], sys.argv[2]
EX = os.path.join(SRC, "examples")
TMP = tempfile.mkdtemp(prefix="lossc_cli_")
RTOL, ATOL = 1e-5, 1e-6
failures = []


def run(*args, expect=0):
    p = subprocess.run([LOSSC, *args], capture_output=True, text=True)
    if p.returncode != expect:
        failures.append(f"lossc {' '.join(args)}: exit {p.returncode}, want {expect}\n"
                        f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def save(name, arr):
    path = os.path.join(TMP, name + ".npy")
    np.save(path, arr)
    return path


def check_close(what, got, want, rtol=RTOL, atol=ATOL):
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        failures.append(f"{what}: shape {got.shape}, want {want.shape}")
        return
    err = np.abs(got.astype(np.float64) - want)
    bad = err > atol + rtol * np.abs(want)
    if bad.any():
        i = np.unravel_index(np.argmax(err - rtol * np.abs(want)), want.shape)
        failures.append(f"{what}: {bad.sum()} elements off, worst at {i}: got {got[i]!r}, "
                        f"want {want[i]!r}")


def expect_message(p, *parts):
    for part in parts:
        if part not in p.stderr:
            failures.append(f"message {p.stderr!r} lacks {part!r}")


def eval_case(name, loss_file, entry, inputs, ref, sets=(), dloss=None, dtype=np.float32):
    """inputs: name -> numpy array; ref(tensors) -> loss tensor (float64)."""
    out = os.path.join(TMP, "out_" + name)
    args = ["eval", os.path.join(EX, loss_file), "--entry", entry, "--out", out]
    for k, v in inputs.items():
        args += ["--in", f"{k}={save(name + '_' + k, v)}"]
    for s in sets:
        args += ["--set", s]
    if dloss is not None:
        args += ["--dloss", save(name + "_dloss", dloss)]
    p = run(*args)
    if p.returncode != 0:
        return
    ts = {k: torch.tensor(v.astype(np.float64) if v.dtype.kind == "f" else v,
                          requires_grad=v.dtype.kind == "f")
          for k, v in inputs.items()}
    loss = ref(ts)
    upstream = torch.ones_like(loss) if dloss is None else torch.tensor(dloss, dtype=torch.float64)
    loss.backward(upstream)
    got = np.load(os.path.join(out, "loss.npy"))
    if got.dtype != dtype:
        failures.append(f"{name}: loss.npy is {got.dtype}, want {dtype}")
    check_close(f"{name} loss", got, loss.detach().numpy())
    for k, v in inputs.items():
        path = os.path.join(out, f"grad_{k}.npy")
        if v.dtype.kind != "f":
            if os.path.exists(path):
                failures.append(f"{name}: {path} written for an integer input")
            continue
        g = np.load(path)
        if g.dtype != v.dtype or g.shape != v.shape:
            failures.append(f"{name}: grad_{k} is {g.dtype}{g.shape}, want {v.dtype}{v.shape}")
        check_close(f"{name} grad_{k}", g, ts[k].grad.numpy())


def huber_ref(t, delta=None):
    d = t["pred"] - t["target"]
    a = d.abs()
    dl = t["delta"] if "delta" in t else torch.tensor(1.0 if delta is None else delta,
                                                      dtype=torch.float64)
    return torch.where(a <= dl, 0.5 * d * d, dl * (a - 0.5 * dl)).mean()


def test_eval():
    rng = np.random.default_rng(7)
    n = 1003
    pred = rng.normal(size=n).astype(np.float32)
    target = rng.normal(size=n).astype(np.float32)
    eval_case("huber", "huber.loss", "huber", {"pred": pred, "target": target}, huber_ref)
    eval_case("huber_set", "huber.loss", "huber", {"pred": pred, "target": target},
              lambda t: huber_ref(t, 0.7), sets=["delta=0.7"])
    # a scalar from a 0-d file (np.save of a float is f64; converted to f32)
    eval_case("huber_in", "huber.loss", "huber",
              {"pred": pred, "target": target, "delta": np.array(1.5, dtype=np.float32)},
              huber_ref)
    eval_case("mse", "mse.loss", "mse", {"pred": pred, "target": target},
              lambda t: torch.nn.functional.mse_loss(t["pred"], t["target"]))
    y = (rng.random(n) < 0.5).astype(np.float32)
    eval_case("bce", "bce_logits.loss", "bce_logits", {"logits": pred * 3, "target": y},
              lambda t: torch.nn.functional.binary_cross_entropy_with_logits(
                  t["logits"], t["target"]))
    nb, c = 257, 10
    logits = rng.normal(size=(nb, c)).astype(np.float32) * 2
    labels = rng.integers(0, c, size=nb).astype(np.int64)
    weight = rng.uniform(0.5, 2, size=c).astype(np.float32)
    ce_in = {"logits": logits, "y": labels, "weight": weight}

    # torch's cross_entropy cannot differentiate its weight: the same formula by hand
    def ce_none(t):
        lsm = torch.log_softmax(t["logits"], dim=1)
        return -t["weight"][t["y"]] * lsm.gather(1, t["y"][:, None])[:, 0]

    def ce_mean(t):
        return ce_none(t).sum() / t["weight"][t["y"]].sum()

    eval_case("ce", "ce.loss", "ce", ce_in, ce_mean)
    eval_case("ce_sum", "ce.loss", "ce", ce_in, lambda t: ce_none(t).sum(), sets=["reduction=sum"])
    # reduction none: gradients of sum(loss) by default, of dloss . loss with --dloss
    eval_case("ce_none", "ce.loss", "ce", ce_in, ce_none, sets=["reduction=none"])
    eval_case("ce_dloss", "ce.loss", "ce", ce_in, ce_none, sets=["reduction=none"],
              dloss=rng.normal(size=nb).astype(np.float32))
    # and torch's own cross_entropy agrees on the value and the logits' gradient
    with torch.no_grad():
        t = {k: torch.tensor(v.astype(np.float64) if v.dtype.kind == "f" else v)
             for k, v in ce_in.items()}
        check_close("ce vs torch", np.array(ce_mean(t)),
                    torch.nn.functional.cross_entropy(t["logits"], t["y"], weight=t["weight"]),
                    1e-12, 0)


def write_loss(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_eval_dtypes_and_outs():
    """f64, i32 and bool inputs; extra outputs; --wrt."""
    masked = write_loss("masked.loss", "loss masked(x: f64[N], m: bool[N], k: i32[N]) {\n"
                        "    let d = where(m, x * x, f64(k))\n"
                        "    out biggest = max(d)\n"
                        "    out each = d\n"
                        "    return sum(d)\n}\n")
    x = np.array([1.5, -2, 3, 0.25], np.float64)
    m = np.array([True, False, True, False])
    k = np.array([5, 7, -9, 11], np.int32)
    out = os.path.join(TMP, "out_masked")
    run("eval", masked, "--out", out, "--in", f"x={save('mx', x)}", "--in", f"m={save('mm', m)}",
        "--in", f"k={save('mk', k)}")
    d = np.where(m, x * x, k.astype(np.float64))
    want = {"loss": d.sum(), "biggest": d.max(), "each": d, "grad_x": np.where(m, 2 * x, 0)}
    if sorted(os.listdir(out)) != sorted(f + ".npy" for f in want):
        failures.append(f"eval masked wrote {sorted(os.listdir(out))}")
        return
    for f, w in want.items():
        got = np.load(os.path.join(out, f + ".npy"))
        if got.dtype != np.float64:
            failures.append(f"masked {f}.npy is {got.dtype}")
        check_close(f"masked {f}", got, w, 1e-15, 0)
    # --wrt: only the gradients asked for
    out = os.path.join(TMP, "out_wrt")
    p = save("wp", np.ones(3, np.float32))
    run("eval", os.path.join(EX, "huber.loss"), "--out", out, "--wrt", "pred", "--in", f"pred={p}",
        "--in", f"target={p}")
    if sorted(os.listdir(out)) != ["grad_pred.npy", "loss.npy"]:
        failures.append(f"eval --wrt pred wrote {sorted(os.listdir(out))}")


def test_eval_errors():
    out = os.path.join(TMP, "never")
    huber = os.path.join(EX, "huber.loss")
    p7 = save("p7", np.zeros(7, np.float32))
    t5 = save("t5", np.zeros(5, np.float32))
    t7 = save("t7", np.zeros(7, np.float32))
    t7d = save("t7d", np.zeros(7, np.float64))
    fortran = save("fortran", np.asfortranarray(np.zeros((3, 4), np.float32)))
    cases = [
        (["--in", f"pred={p7}", "--in", f"target={t5}"], ["input 'target' has N = 5 but 'pred' has N = 7"]),
        (["--in", f"pred={p7}", "--in", f"target={t7d}"], ["target", "is f64 but", "f32[N]"]),
        (["--in", f"pred={p7}"], ["input 'target' is missing"]),
        (["--in", f"pred={p7}", "--in", f"target={t7}", "--in", f"tgt={t7}"], ["no input named 'tgt'"]),
        (["--in", f"pred={p7}", "--in", f"target={fortran}"], ["Fortran order"]),
        (["--in", f"pred={p7}", "--in", f"target={TMP}/missing.npy"], ["missing.npy", "cannot read"]),
        (["--in", f"pred={p7}", "--in", f"target={t7}", "--set", "delta=abc"], ["not a number"]),
    ]
    for extra, parts in cases:
        p = run("eval", huber, "--entry", "huber", "--out", out, *extra, expect=1)
        expect_message(p, *parts)
        if os.path.exists(out):
            failures.append(f"eval {extra} failed but created {out}")
    # a label out of range is found at run time; an existing DIR keeps its files
    os.makedirs(out)
    with open(os.path.join(out, "loss.npy"), "wb") as f:
        f.write(b"old")
    y = save("ybad", np.array([0, 1, 12, 2], np.int64))
    x = save("x43", np.zeros((4, 3), np.float32))
    w = save("w3", np.ones(3, np.float32))
    p = run("eval", os.path.join(EX, "ce.loss"), "--entry", "ce", "--out", out, "--in", f"logits={x}",
            "--in", f"y={y}", "--in", f"weight={w}", expect=1)
    expect_message(p, "label out of range: y[2] = 12 is not in [0, 3) (input 'y', dim C")
    if sorted(os.listdir(out)) != ["loss.npy"] or open(os.path.join(out, "loss.npy"), "rb").read() != b"old":
        failures.append(f"a failed eval changed {out}: {os.listdir(out)}")


def test_check():
    broken = os.path.join(TMP, "broken.loss")
    with open(broken, "w") as f:
        f.write("# a loss with a syntax error\nloss f(x: f32[N]) {\n    return mean(x +)\n}\n")
    p = run("check", broken, expect=1)
    lines = p.stderr.splitlines()
    if not (len(lines) >= 3 and re.match(re.escape(broken) + r":3:20: error: \S", lines[0])
            and lines[1].strip() == "return mean(x +)"
            and lines[2].index("^") - lines[1].index("return") == len("return mean(x +")):
        failures.append(f"check: unexpected diagnostic format:\n{p.stderr}")
    p = run("check", os.path.join(EX, "ce.loss"))
    if p.stdout or p.stderr:
        failures.append(f"check of a clean file printed: {p.stdout!r} {p.stderr!r}")
    run("check", os.path.join(TMP, "nonexistent.loss"), expect=1)


def test_views():
    mse = os.path.join(EX, "mse.loss")
    cases = [(["ir", mse], "output loss = "), (["ir", mse, "--grad"], "output grad_pred = "),
             (["ir", mse, "--grad", "--wrt", "pred"], "output grad_pred = "),
             (["ir", mse, "--print-after-all"], "== after "), (["ir", mse, "--kernels"], "sweep"),
             (["dot", mse, "--grad"], "digraph"), (["llvm", mse, "--grad"], "define")]
    for args, part in cases:
        p = run(*args)
        if part not in p.stdout:
            failures.append(f"lossc {' '.join(args)}: output lacks {part!r}")
    p = run("ir", mse, "--grad", "--wrt", "pred")
    if "grad_target" in p.stdout:
        failures.append("ir --grad --wrt pred still computes grad_target")


def test_demo_and_gradcheck():
    p = run("demo", os.path.join(EX, "huber.loss"), "--entry", "huber", "-n", "100000",
            "--threads", "2")
    for part in ["loss", "gradient", "pred", "gradient check passed", "forward+backward", "GB/s"]:
        if part not in p.stdout:
            failures.append(f"demo output lacks {part!r}:\n{p.stdout}")
    p = run("demo", os.path.join(EX, "ce.loss"), "-n", "3000", "--dim", "C=7")
    if "gradient check passed" not in p.stdout:
        failures.append(f"demo ce:\n{p.stdout}{p.stderr}")
    for f in ["huber.loss", "ce.loss", "bce_logits.loss"]:
        p = run("gradcheck", os.path.join(EX, f))
        if "kernel gradcheck: pass" not in p.stdout:
            failures.append(f"gradcheck {f}:\n{p.stdout}{p.stderr}")


def test_usage():
    huber = os.path.join(EX, "huber.loss")
    run("--version")
    if "commands:" not in run("--help").stdout:
        failures.append("--help lacks the command list")
    if "--in NAME=PATH.npy" not in run("eval", "--help").stdout:
        failures.append("eval --help lacks --in")
    run(expect=2)
    run("frobnicate", huber, expect=2)
    run("ir", huber, "--frobnicate", expect=2)
    run("check", huber, "--entry", "huber", expect=2)  # check takes no --entry
    run("eval", huber, expect=2)  # no --out
    run("build", huber, "-o", "x.o", expect=2)  # no --header
    run("ir", expect=2)
    run("ir", huber, huber, expect=2)
    run("demo", huber, "--threads", "zero", expect=2)
    run("demo", huber, "--dim", "Q=3", expect=2)


try:
    for test in [test_eval, test_eval_dtypes_and_outs, test_eval_errors, test_check, test_views, test_demo_and_gradcheck,
                 test_usage]:
        test()
finally:
    shutil.rmtree(TMP, ignore_errors=True)
if failures:
    print("\n\n".join(failures))
    print(f"\n{len(failures)} failure(s)")
    sys.exit(1)
print("test_cli: all passed")
