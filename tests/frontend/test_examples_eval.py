#!/usr/bin/python3
"""The seed-article examples end to end: `lossc eval` on each examples/*.loss
(JIT-compiled forward + backward on f32 .npy inputs) against PyTorch autograd
in float64 on the same inputs: the loss and the gradient of every tensor
input.

    /usr/bin/python3 tests/frontend/test_examples_eval.py LOSSC SOURCE_DIR

Sizes are odd (not multiples of any vector width). Tolerances are those of
an f32 kernel against an f64 reference.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

LOSSC, SRC = sys.argv[1], sys.argv[2]
EX = os.path.join(SRC, "examples")
TMP = tempfile.mkdtemp(prefix="lossc_examples_")
RTOL, ATOL = 2e-4, 2e-5
GRTOL, GATOL = 2e-3, 2e-5
rng = np.random.default_rng(7)
failures = []


def f32(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def probs(*shape):
    return rng.random(shape).astype(np.float32)


def close(what, got, want, rtol, atol):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        failures.append(f"{what}: shape {got.shape}, want {want.shape}")
        return
    same = (np.isnan(got) & np.isnan(want)) | (got == want)  # NaN/inf agree with themselves
    err = np.where(same, -1.0, np.abs(got - want) - (atol + rtol * np.abs(want)))
    err = np.where(np.isnan(err), 1.0, err)
    if np.max(err, initial=-1) > 0:
        i = int(np.argmax(err))
        failures.append(f"{what}: element {i} is {got.reshape(-1)[i]!r}, "
                        f"torch says {want.reshape(-1)[i]!r}")


def check(name, inputs, ref, dloss=None, outputs=None):
    """Run lossc eval on examples/NAME.loss, compare with ref(**tensors);
    dloss: the upstream gradient (a scalar), outputs: the expected value of
    extra outputs."""
    global runs
    runs += 1
    out = os.path.join(TMP, f"{name}_{runs}")
    args = [LOSSC, "eval", os.path.join(EX, name + ".loss"), "--entry", name, "--out", out]
    if dloss is not None:
        path = os.path.join(TMP, f"{name}_{runs}_dloss.npy")
        np.save(path, np.float32(dloss))
        args += ["--dloss", path]
    for k, v in inputs.items():
        path = os.path.join(TMP, f"{name}_{k}.npy")
        np.save(path, v)
        args += ["--in", f"{k}={path}"]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        failures.append(f"{name}: lossc eval failed:\n{p.stderr}")
        return
    t = {k: torch.tensor(v.astype(np.float64) if v.dtype == np.float32 else v,
                         requires_grad=v.dtype == np.float32)
         for k, v in inputs.items()}
    loss = ref(**t)
    (loss * (1.0 if dloss is None else dloss)).backward()
    close(f"{name}: loss", np.load(os.path.join(out, "loss.npy")), loss.detach().numpy(),
          RTOL, ATOL)
    for k, v in t.items():
        if v.requires_grad:
            close(f"{name}: grad_{k}", np.load(os.path.join(out, f"grad_{k}.npy")),
                  v.grad.numpy(), GRTOL, GATOL)
    for k, want in (outputs or {}).items():
        got = np.load(os.path.join(out, f"{k}.npy"))
        if got != want:
            failures.append(f"{name}: output {k} is {got}, want {want}")
    print(f"ok {name}")


runs = 0


def sigmoid_focal(x, y, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    return (alpha_t * (1 - p_t) ** gamma * ce).mean()


def dice(p, t, smooth):
    p, t = p.reshape(-1), t.reshape(-1)
    return 1 - (2 * (p * t).sum() + smooth) / (p.sum() + t.sum() + smooth)


N, C, D, H, W = 37, 5, 7, 3, 11
labels = rng.integers(0, C, N).astype(np.int64)
mask = (rng.random((2, H, W)) > 0.6).astype(np.float32)

def weighted_ce(logits, y, w):
    # F.cross_entropy(logits, y, weight=w), written with ops so that the
    # weight's gradient exists (PyTorch's nll_loss has none for it)
    lsm = F.log_softmax(logits, 1)
    wy = w[y]
    return -(wy * lsm[torch.arange(len(y)), y]).sum() / wy.sum()


check("weighted_ce", {"logits": f32(N, C, scale=2), "y": labels,
                      "class_weights": probs(C) + 0.2},
      lambda logits, y, class_weights: weighted_ce(logits, y, class_weights))
check("focal", {"logits": f32(N, C, scale=3), "target": (probs(N, C) > 0.5).astype(np.float32)},
      lambda logits, target: sigmoid_focal(logits, target))
check("dice", {"pred": probs(2, H, W), "target": mask},
      lambda pred, target: dice(pred, target, 1e-6))
check("dice_ce", {"logits": f32(N, C, scale=2), "y": labels},
      lambda logits, y: 0.5 * F.cross_entropy(logits, y) +
      0.5 * dice(F.softmax(logits, 1), F.one_hot(y, C).double(), 1e-6))
check("focal_dice", {"logits": f32(2, H, W, scale=3), "target": mask},
      lambda logits, target: sigmoid_focal(logits, target) +
      dice(torch.sigmoid(logits), target, 1.0))
check("multitask", {"reg_pred": f32(N), "reg_target": f32(N), "logits": f32(N, C),
                    "labels": labels, "log_vars": np.array([0.3, -0.4], np.float32)},
      lambda reg_pred, reg_target, logits, labels, log_vars:
      torch.exp(-log_vars[0]) * F.mse_loss(reg_pred, reg_target) + log_vars[0] +
      torch.exp(-log_vars[1]) * F.cross_entropy(logits, labels) + log_vars[1])
check("triplet", {"anchor": f32(N, D), "positive": f32(N, D), "negative": f32(N, D)},
      lambda anchor, positive, negative: F.triplet_margin_loss(anchor, positive, negative))
check("margin_ranking", {"x1": f32(N), "x2": f32(N),
                         "y": np.where(probs(N) > 0.5, 1, -1).astype(np.float32)},
      lambda x1, x2, y: F.margin_ranking_loss(x1, x2, y))
q = probs(N, C)
q[0, 1] = 0
q /= q.sum(1, keepdims=True)
check("kl_div", {"student_logits": f32(N, C), "target": q.astype(np.float32)},
      lambda student_logits, target:
      F.kl_div(F.log_softmax(student_logits, 1), target, reduction="batchmean"))


def info_nce(z, t=0.1):
    s = z @ z.T / t
    m = s.masked_fill(torch.eye(z.shape[0], dtype=torch.bool), float("-inf"))
    pos = (torch.arange(z.shape[0]) + z.shape[0] // 2) % z.shape[0]
    return F.cross_entropy(m, pos)


check("info_nce", {"z": f32(10, D, scale=0.5)}, lambda z: info_nce(z))

# dynamic loss scaling: gradients scaled by dloss = S, found_inf when they overflow
amp = {"logits": f32(N, C, scale=2), "y": labels}
amp_ref = lambda logits, y: F.cross_entropy(logits, y, label_smoothing=0.1)
check("amp_scaling", amp, amp_ref, dloss=1024.0, outputs={"found_inf": False})
# an activation that overflowed (an inf logit): its row's gradient is NaN
logits_inf = amp["logits"].copy()
logits_inf[3, 1] = np.inf
np.save(os.path.join(TMP, "amp_inf_logits.npy"), logits_inf)
np.save(os.path.join(TMP, "amp_inf_y.npy"), amp["y"])
p = subprocess.run([LOSSC, "eval", os.path.join(EX, "amp_scaling.loss"),
                    "--out", os.path.join(TMP, "amp_inf"),
                    "--in", "logits=" + os.path.join(TMP, "amp_inf_logits.npy"),
                    "--in", "y=" + os.path.join(TMP, "amp_inf_y.npy")],
                   capture_output=True, text=True)
if p.returncode != 0 or not np.load(os.path.join(TMP, "amp_inf", "found_inf.npy")):
    failures.append("amp_scaling: found_inf is not true for an inf logit " + p.stderr)
else:
    print("ok amp_scaling found_inf")

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("all examples agree with PyTorch")
