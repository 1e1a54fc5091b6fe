#!/usr/bin/python3
"""Write tests/lib/cases/GROUP.cases: the loss library against PyTorch.

    /usr/bin/python3 tests/lib/gen_torch_cases.py     (from the project root)

Each case is a one-line .loss source calling a library loss, with `{T}` where
the float dtype goes (test_lib_torch.c compiles it as f32 and as f64), its
inputs, compile-time settings, and PyTorch's value of the loss and gradients
for the same inputs, computed in float64. Float inputs are rounded to float32
first, so one set of inputs and one set of references serves both dtypes:
the f32 kernels are compared with the exact (f64) answer.

`wrt` lists the inputs whose gradient is compared: those PyTorch
differentiates (it refuses the gradient of nll_loss's weight, for one), minus
those where PyTorch's gradient is an artifact (see the notes of the cases).
Losses PyTorch does not have (focal, Dice, Tversky, InfoNCE, ...) are
written below with torch operations, from their documented formulas.

Inputs are seeded, so the files only change when a case changes.
"""
import math
import os
import warnings

import numpy as np
import torch
import torch.nn.functional as F

warnings.filterwarnings("ignore")  # kl_div's "mean"
D64 = torch.float64
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases")
rng = np.random.default_rng(20240607)
groups = {}


# ---- inputs ------------------------------------------------------------------------------
def f32(a):
    """A float input: rounded to float32 (stored as float64)."""
    return np.asarray(a, np.float32).astype(np.float64)


def randn(*shape, scale=1.0):
    return f32(rng.standard_normal(shape) * scale)


def unif(*shape, lo=0.0, hi=1.0):
    return f32(rng.uniform(lo, hi, shape))


def labels(n, c, *more):
    return rng.integers(0, c, (n,) + more).astype(np.int64)


def signs(*shape):
    return f32(np.where(rng.random(shape) < 0.5, -1.0, 1.0))


def probs(*shape, axis=1):
    p = np.exp(rng.standard_normal(shape))
    return f32(p / p.sum(axis=axis, keepdims=True))


# ---- cases -------------------------------------------------------------------------------
def case(group, name, src, inputs, ref, dims, settings=None, wrt=None, gradcheck=True):
    """src: the loss, `{T}` for the float dtype. inputs: name -> array in the
    order of the loss's parameters (float arrays are f32-rounded float64, int
    arrays int64, 0-d floats are scalar parameters). ref(**tensors) computes
    PyTorch's loss. wrt: inputs whose gradient is compared (default: every
    float input). gradcheck: also check finite differences in f64 (off at
    kinks and where PyTorch's gradient is not the derivative)."""
    floats = [k for k, v in inputs.items() if v.dtype == np.float64 and v.ndim > 0]
    wrt = list(floats if wrt is None else wrt)
    settings = {k: str(v) for k, v in (settings or {}).items()}
    while True:
        t = {k: torch.tensor(v, dtype=D64 if v.dtype == np.float64 else None,
                             requires_grad=k in wrt) for k, v in inputs.items()}
        try:
            loss = ref(**t)
            break
        except RuntimeError as e:
            # an input PyTorch does not differentiate (a target, a weight):
            # the last float one is dropped until PyTorch accepts
            if "not differentiable" not in str(e) or len(wrt) < 2:
                raise
            wrt.pop()
    grads = torch.autograd.grad(loss.sum(), [t[k] for k in wrt], allow_unused=True) \
        if wrt else []
    grads = [g if g is not None else torch.zeros_like(t[k]) for g, k in zip(grads, wrt)]
    torch_f32_check(f"{group}/{name}", inputs, ref, wrt, loss, grads)
    groups.setdefault(group, []).append(dict(
        name=f"{group}/{name}", src=src, inputs=inputs, dims=dims, settings=settings,
        loss=loss.detach().numpy(), wrt=wrt, grads=[g.numpy() for g in grads],
        gradcheck=gradcheck))


torch_f32_misses = []


def torch_f32_check(name, inputs, ref, wrt, loss, grads):
    """PyTorch's own float32 answer against its float64 one, with the
    tolerance test_lib_torch.c gives lossc's f32 kernels (1e-5 relative or
    1e-6 absolute): the cases it misses are listed at the end (f32 itself
    is the limit there, not the formula)."""
    t = {k: torch.tensor(v, dtype=torch.float32 if v.dtype == np.float64 else None,
                         requires_grad=k in wrt) for k, v in inputs.items()}
    try:
        l32 = ref(**t)
        g32 = torch.autograd.grad(l32.sum(), [t[k] for k in wrt], allow_unused=True) \
            if wrt else []
    except RuntimeError:
        return
    pairs = [(l32, loss)] + [(a, b) for a, b in zip(g32, grads) if a is not None]
    for a, b in pairs:
        a, b = a.detach().double().numpy(), b.detach().numpy()
        ok = np.isclose(a, b, rtol=1e-5, atol=1e-6) | (np.isnan(a) & np.isnan(b))
        ok |= np.abs(a - b) <= 1e-5 * np.abs(b)
        if not ok.all():
            torch_f32_misses.append(name)
            return


REDS = ["mean", "sum", "none"]


def reds(group, name, src, inputs, ref, dims, **kw):
    """One case per reduction; src and ref take the reduction as `red`."""
    for red in REDS:
        case(group, f"{name} {red}", src.replace("RED", red), inputs,
             lambda red=red, **t: ref(red=red, **t), dims, **kw)


N, C, D, H, W = 7, 5, 3, 2, 3

# ---- regression ------------------------------------------------------------------------------
g = "regression"
x, y = randn(N), randn(N)
x2 = randn(N, C) * 2
y2 = randn(N, C)
for fn in ["mse_loss", "l1_loss"]:
    reds(g, fn, f'loss t(a: {{T}}[N, C], b: {{T}}[N, C]) = {fn}(a, b, reduction="RED")',
         {"a": x2, "b": y2}, lambda a, b, red, fn=fn: getattr(F, fn)(a, b, reduction=red),
         {"N": N, "C": C})
case(g, "l1_loss zero difference", 'loss t(a: {T}[N], b: {T}[N]) = l1_loss(a, b)',
     {"a": f32([1, 2, 3]), "b": f32([1, 0, 3])}, lambda a, b: F.l1_loss(a, b), {"N": 3},
     gradcheck=False)
case(g, "mse_loss broadcast", 'loss t(a: {T}[N, C], b: {T}[C]) = mse_loss(a, b)',
     {"a": x2, "b": randn(C)}, lambda a, b: F.mse_loss(a, b.expand(N, C)), {"N": N, "C": C})
case(g, "mse_loss N=1", 'loss t(a: {T}[N], b: {T}[N]) = mse_loss(a, b, reduction="sum")',
     {"a": randn(1), "b": randn(1)}, lambda a, b: F.mse_loss(a, b, reduction="sum"), {"N": 1})
for delta in [1.0, 0.5, 2.5]:
    reds(g, f"huber_loss delta={delta}",
         f'loss t(a: {{T}}[N, C], b: {{T}}[N, C]) = huber_loss(a, b, reduction="RED", '
         f'delta={delta})', {"a": x2, "b": y2},
         lambda a, b, red, delta=delta: F.huber_loss(a, b, reduction=red, delta=delta),
         {"N": N, "C": C})
case(g, "huber_loss run-time delta",
     "loss t(a: {T}[N, C], b: {T}[N, C], d: {T} = 1.0) = huber_loss(a, b, delta=d)",
     {"a": x2, "b": y2, "d": f32(0.7)}, lambda a, b, d: F.huber_loss(a, b, delta=float(d)),
     {"N": N, "C": C}, wrt=["a", "b"])
for beta in [1.0, 0.3, 0.0]:
    reds(g, f"smooth_l1_loss beta={beta}",
         f'loss t(a: {{T}}[N, C], b: {{T}}[N, C]) = smooth_l1_loss(a, b, reduction="RED", '
         f'beta={beta})', {"a": x2, "b": y2},
         lambda a, b, red, beta=beta: F.smooth_l1_loss(a, b, reduction=red, beta=beta),
         {"N": N, "C": C})
rate_log = randn(N, C)
counts = f32(rng.poisson(2.0, (N, C)))
rate = unif(N, C, lo=0.1, hi=3.0)
for log_input in [True, False]:
    for full in [False, True]:
        inp = rate_log if log_input else rate
        # With full, PyTorch's target gradient is NaN where target == 0 (0 *
        # log 0 in autograd), and the loss jumps at target = 1 (Stirling's
        # term starts there): counts of 2 and more.
        cnt = counts if not full else counts + 2
        reds(g, f"poisson_nll_loss log_input={log_input} full={full}",
             f"loss t(a: {{T}}[N, C], b: {{T}}[N, C]) = poisson_nll_loss(a, b, "
             f'log_input={str(log_input).lower()}, full={str(full).lower()}, reduction="RED")',
             {"a": inp, "b": cnt},
             lambda a, b, red, li=log_input, fu=full:
             F.poisson_nll_loss(a, b, log_input=li, full=fu, reduction=red), {"N": N, "C": C})
case(g, "poisson_nll_loss full with zero counts",
     "loss t(a: {T}[N, C], b: {T}[N, C]) = poisson_nll_loss(a, b, full=true)",
     {"a": rate_log, "b": counts * (rng.random((N, C)) < 0.5)},
     lambda a, b: F.poisson_nll_loss(a, b, full=True), {"N": N, "C": C}, wrt=["a"])
case(g, "poisson_nll_loss eps",
     "loss t(a: {T}[N, C], b: {T}[N, C]) = poisson_nll_loss(a, b, log_input=false, eps=0.01)",
     {"a": rate, "b": counts},
     lambda a, b: F.poisson_nll_loss(a, b, log_input=False, eps=0.01), {"N": N, "C": C})
var = unif(N, C, lo=0.2, hi=2.0)
for full in [False, True]:
    reds(g, f"gaussian_nll_loss full={full}",
         f"loss t(a: {{T}}[N, C], b: {{T}}[N, C], v: {{T}}[N, C]) = "
         f'gaussian_nll_loss(a, b, v, full={str(full).lower()}, reduction="RED")',
         {"a": x2, "b": y2, "v": var},
         lambda a, b, v, red, full=full: F.gaussian_nll_loss(a, b, v, full=full, reduction=red),
         {"N": N, "C": C})
case(g, "gaussian_nll_loss shared variance",
     "loss t(a: {T}[N, C], b: {T}[N, C], v: {T}[N]) = gaussian_nll_loss(a, b, v)",
     {"a": x2, "b": y2, "v": unif(N, lo=0.2, hi=2.0)},
     lambda a, b, v: F.gaussian_nll_loss(a, b, v), {"N": N, "C": C})
# var below eps: clamped, and the gradient still flows to var (finite
# differences see the clamp, hence no gradcheck).
vs = var.copy()
vs[0, :3] = f32([1e-9, 0.0, 1e-7])
case(g, "gaussian_nll_loss var below eps",
     "loss t(a: {T}[N, C], b: {T}[N, C], v: {T}[N, C]) = gaussian_nll_loss(a, b, v, eps=1e-4)",
     {"a": x2, "b": y2, "v": vs},
     lambda a, b, v: F.gaussian_nll_loss(a, b, v, eps=1e-4), {"N": N, "C": C}, gradcheck=False)
case(g, "rmse_loss", "loss t(a: {T}[N, C], b: {T}[N, C]) = rmse_loss(a, b)",
     {"a": x2, "b": y2}, lambda a, b: torch.sqrt(F.mse_loss(a, b)), {"N": N, "C": C})
reds(g, "mae_loss", 'loss t(a: {T}[N], b: {T}[N]) = mae_loss(a, b, reduction="RED")',
     {"a": x, "b": y}, lambda a, b, red: F.l1_loss(a, b, reduction=red), {"N": N})

# ---- cross-entropy, nll, binary cross-entropy, KL ----------------------------------------------
g = "crossentropy"
logits = randn(N, C, scale=2)
tgt = labels(N, C)
tgt[2] = 1
tgt_ign = tgt.copy()
tgt_ign[[0, 4]] = -100
cw = unif(C, lo=0.2, hi=2.0)
lsm = f32(torch.log_softmax(torch.tensor(logits), 1).numpy())
nc = {"N": N, "C": C}
SRC_XYW = "loss t(x: {T}[N, C], y: i64[N], w: {T}[C]) = "
for red in REDS:
    case(g, f"nll_loss {red}", f'loss t(x: {{T}}[N, C], y: i64[N]) = nll_loss(x, y, reduction="{red}")',
         {"x": lsm, "y": tgt_ign}, lambda x, y, red=red: F.nll_loss(x, y, reduction=red), nc)
    case(g, f"nll_loss weight ignore_index {red}",
         SRC_XYW + f'nll_loss(x, y, weight=w, ignore_index=1, reduction="{red}")',
         {"x": lsm, "y": tgt, "w": cw},
         lambda x, y, w, red=red: F.nll_loss(x, y, weight=w, ignore_index=1, reduction=red),
         nc, wrt=["x"])
    case(g, f"cross_entropy {red}",
         f'loss t(x: {{T}}[N, C], y: i64[N]) = cross_entropy(x, y, reduction="{red}")',
         {"x": logits, "y": tgt}, lambda x, y, red=red: F.cross_entropy(x, y, reduction=red), nc)
    case(g, f"cross_entropy weight {red}", SRC_XYW + f'cross_entropy(x, y, w, reduction="{red}")',
         {"x": logits, "y": tgt, "w": cw},
         lambda x, y, w, red=red: F.cross_entropy(x, y, w, reduction=red), nc, wrt=["x"])
    case(g, f"cross_entropy ignore_index {red}",
         f'loss t(x: {{T}}[N, C], y: i64[N]) = cross_entropy(x, y, reduction="{red}")',
         {"x": logits, "y": tgt_ign},
         lambda x, y, red=red: F.cross_entropy(x, y, reduction=red), nc)
    case(g, f"cross_entropy weight ignore_index smoothing {red}",
         SRC_XYW + f'cross_entropy(x, y, w, ignore_index=1, reduction="{red}", '
                   'label_smoothing=0.2)',
         {"x": logits, "y": tgt, "w": cw},
         lambda x, y, w, red=red: F.cross_entropy(x, y, w, ignore_index=1, reduction=red,
                                                  label_smoothing=0.2), nc, wrt=["x"])
    case(g, f"cross_entropy smoothing {red}",
         f'loss t(x: {{T}}[N, C], y: i64[N]) = cross_entropy(x, y, reduction="{red}", '
         'label_smoothing=0.1)', {"x": logits, "y": tgt_ign},
         lambda x, y, red=red: F.cross_entropy(x, y, reduction=red, label_smoothing=0.1), nc)
pr = probs(N, C)
for red in REDS:
    case(g, f"cross_entropy probabilities weight smoothing {red}",
         "loss t(x: {T}[N, C], p: {T}[N, C], w: {T}[C]) = "
         f'cross_entropy(x, p, w, reduction="{red}", label_smoothing=0.15)',
         {"x": logits, "p": pr, "w": cw},
         lambda x, p, w, red=red: F.cross_entropy(x, p, w, reduction=red, label_smoothing=0.15),
         nc, wrt=["x", "p"])
case(g, "cross_entropy probabilities", "loss t(x: {T}[N, C], p: {T}[N, C]) = cross_entropy(x, p)",
     {"x": logits, "p": pr}, lambda x, p: F.cross_entropy(x, p), nc)
case(g, "cross_entropy run-time smoothing",
     "loss t(x: {T}[N, C], y: i64[N], ls: {T} = 0.0) = cross_entropy(x, y, label_smoothing=ls)",
     {"x": logits, "y": tgt, "ls": f32(0.3)},
     lambda x, y, ls: F.cross_entropy(x, y, label_smoothing=float(ls)), nc, wrt=["x"])
# every label ignored: the mean is 0/0 = NaN, the gradient 0, as in PyTorch
all_ign = np.full(N, 3, np.int64)
case(g, "cross_entropy every label ignored",
     "loss t(x: {T}[N, C], y: i64[N]) = cross_entropy(x, y, ignore_index=3)",
     {"x": logits, "y": all_ign}, lambda x, y: F.cross_entropy(x, y, ignore_index=3), nc,
     gradcheck=False)
case(g, "cross_entropy every label ignored, weight and smoothing",
     SRC_XYW + "cross_entropy(x, y, w, ignore_index=3, label_smoothing=0.1)",
     {"x": logits, "y": all_ign, "w": cw},
     lambda x, y, w: F.cross_entropy(x, y, w, ignore_index=3, label_smoothing=0.1), nc,
     wrt=["x"], gradcheck=False)
case(g, "nll_loss every label ignored, sum", 'loss t(x: {T}[N, C], y: i64[N]) = '
     'nll_loss(x, y, ignore_index=3, reduction="sum")', {"x": lsm, "y": all_ign},
     lambda x, y: F.nll_loss(x, y, ignore_index=3, reduction="sum"), nc)
# zero weights: a weighted mean of 0/0 is NaN, and so is PyTorch's gradient
zw = cw.copy()
zw[:] = 0
case(g, "cross_entropy zero weights", SRC_XYW + "cross_entropy(x, y, w)",
     {"x": logits, "y": tgt, "w": zw}, lambda x, y, w: F.cross_entropy(x, y, w), nc,
     wrt=["x"], gradcheck=False)
pw = cw.copy()
pw[[tgt[0], tgt[1]]] = 0
case(g, "cross_entropy some zero weights", SRC_XYW + "cross_entropy(x, y, w)",
     {"x": logits, "y": tgt, "w": pw}, lambda x, y, w: F.cross_entropy(x, y, w), nc, wrt=["x"])
ext = logits.copy()
ext[0, :] = f32([1e4, -1e4, 0, 5e3, -3e3])
ext[1, :] = f32([-1e4] * C)
ext[2, tgt[2]] = -1e4
ext[3, :] = f32([88, 89, 90, -87, 100])
case(g, "cross_entropy extreme logits", "loss t(x: {T}[N, C], y: i64[N]) = cross_entropy(x, y)",
     {"x": ext, "y": tgt}, lambda x, y: F.cross_entropy(x, y), nc, gradcheck=False)
case(g, "cross_entropy extreme logits smoothing",
     'loss t(x: {T}[N, C], y: i64[N]) = cross_entropy(x, y, label_smoothing=0.1, reduction="none")',
     {"x": ext, "y": tgt},
     lambda x, y: F.cross_entropy(x, y, label_smoothing=0.1, reduction="none"), nc,
     gradcheck=False)
case(g, "cross_entropy N=1", "loss t(x: {T}[N, C], y: i64[N]) = cross_entropy(x, y)",
     {"x": logits[:1], "y": tgt[:1]}, lambda x, y: F.cross_entropy(x, y), {"N": 1, "C": C})
case(g, "cross_entropy one sample [C]", "loss t(x: {T}[C], y: i64) = cross_entropy(x, y)",
     {"x": logits[0], "y": np.array(tgt[0])}, lambda x, y: F.cross_entropy(x, y), {"C": C})
seg = randn(2, C, H, W)
segy = labels(2, C, H, W)
segy[0, 0, 0] = -100
case(g, "cross_entropy [N, C, H, W] weight ignore",
     "loss t(x: {T}[N, C, H, W], y: i64[N, H, W], w: {T}[C]) = cross_entropy(x, y, w)",
     {"x": seg, "y": segy, "w": cw}, lambda x, y, w: F.cross_entropy(x, y, w),
     {"N": 2, "C": C, "H": H, "W": W}, wrt=["x"])
case(g, "cross_entropy [N, C, H, W] none smoothing",
     'loss t(x: {T}[N, C, H, W], y: i64[N, H, W]) = '
     'cross_entropy(x, y, reduction="none", label_smoothing=0.05)',
     {"x": seg, "y": segy},
     lambda x, y: F.cross_entropy(x, y, reduction="none", label_smoothing=0.05),
     {"N": 2, "C": C, "H": H, "W": W})

p01 = unif(N, C, lo=0.02, hi=0.98)
t01 = unif(N, C)
for red in REDS:
    case(g, f"binary_cross_entropy {red}",
         f'loss t(p: {{T}}[N, C], t: {{T}}[N, C]) = binary_cross_entropy(p, t, reduction="{red}")',
         {"p": p01, "t": t01}, lambda p, t, red=red: F.binary_cross_entropy(p, t, reduction=red),
         nc)
    case(g, f"binary_cross_entropy weight {red}",
         "loss t(p: {T}[N, C], t: {T}[N, C], w: {T}[C]) = "
         f'binary_cross_entropy(p, t, w, reduction="{red}")', {"p": p01, "t": t01, "w": cw},
         lambda p, t, w, red=red: F.binary_cross_entropy(p, t, w.expand(N, C), reduction=red),
         nc, wrt=["p", "t"])
# probabilities of exactly 0 and 1: the logs clamp at -100; PyTorch's input
# gradient (x - t) / max(x (1 - x), 1e-12) is matched; its target gradient
# is +-inf there (lossc's is +-100 w): compared at the other cases only.
pe = p01.copy()
pe[0, :] = f32([0, 1, 0, 1, 1e-30])
te = t01.copy()
te[0, :] = f32([0, 0, 1, 1, 1])
case(g, "binary_cross_entropy at 0 and 1", "loss t(p: {T}[N, C], t: {T}[N, C]) = "
     'binary_cross_entropy(p, t, reduction="none")', {"p": pe, "t": te},
     lambda p, t: F.binary_cross_entropy(p, t, reduction="none"), nc, wrt=["p"], gradcheck=False)
xl = randn(N, C, scale=3)
xl[0, :] = f32([40, -40, 1e4, -1e4, 0])
posw = unif(C, lo=0.1, hi=3.0)
for red in REDS:
    case(g, f"binary_cross_entropy_with_logits {red}",
         "loss t(x: {T}[N, C], t: {T}[N, C]) = "
         f'binary_cross_entropy_with_logits(x, t, reduction="{red}")', {"x": xl, "t": t01},
         lambda x, t, red=red: F.binary_cross_entropy_with_logits(x, t, reduction=red), nc,
         gradcheck=False)
    case(g, f"binary_cross_entropy_with_logits weight pos_weight {red}",
         "loss t(x: {T}[N, C], t: {T}[N, C], w: {T}[C], pw: {T}[C]) = "
         f'binary_cross_entropy_with_logits(x, t, w, reduction="{red}", pos_weight=pw)',
         {"x": xl, "t": t01, "w": cw, "pw": posw},
         lambda x, t, w, pw, red=red: F.binary_cross_entropy_with_logits(
             x, t, w, reduction=red, pos_weight=pw), nc, wrt=["x", "t"], gradcheck=False)
case(g, "binary_cross_entropy_with_logits moderate", "loss t(x: {T}[N, C], t: {T}[N, C]) = "
     "binary_cross_entropy_with_logits(x, t)", {"x": randn(N, C), "t": t01},
     lambda x, t: F.binary_cross_entropy_with_logits(x, t), nc)

lp_in = f32(torch.log_softmax(torch.tensor(randn(N, C)), 1).numpy())
q = probs(N, C)
for red in ["mean", "sum", "none", "batchmean"]:
    for log_target in [False, True]:
        tq = f32(np.log(q)) if log_target else q
        case(g, f"kl_div {red} log_target={log_target}",
             "loss t(x: {T}[N, C], q: {T}[N, C]) = "
             f'kl_div(x, q, reduction="{red}", log_target={str(log_target).lower()})',
             {"x": lp_in, "q": tq},
             lambda x, q, red=red, lt=log_target: F.kl_div(x, q, reduction=red, log_target=lt),
             nc)
q0 = q.copy()
q0[0, 1] = 0
q0[3, 4] = 0
# PyTorch's target gradient is NaN where the target is 0 (xlogy's autograd):
# compared at positive targets only (above).
case(g, "kl_div zero targets", 'loss t(x: {T}[N, C], q: {T}[N, C]) = kl_div(x, q, reduction="batchmean")',
     {"x": lp_in, "q": q0}, lambda x, q: F.kl_div(x, q, reduction="batchmean"), nc, wrt=["x"])

# ---- margin losses ----------------------------------------------------------------------------
g = "margin"
xm = randn(N, C, scale=1.5)
ym = signs(N, C)
for red in REDS:
    case(g, f"soft_margin_loss {red}", "loss t(x: {T}[N, C], y: {T}[N, C]) = "
         f'soft_margin_loss(x, y, reduction="{red}")', {"x": xm, "y": ym},
         lambda x, y, red=red: F.soft_margin_loss(x, y, reduction=red), nc)
    case(g, f"multilabel_soft_margin_loss {red}", "loss t(x: {T}[N, C], y: {T}[N, C]) = "
         f'multilabel_soft_margin_loss(x, y, reduction="{red}")', {"x": xm, "y": unif(N, C)},
         lambda x, y, red=red: F.multilabel_soft_margin_loss(x, y, reduction=red), nc)
    case(g, f"multilabel_soft_margin_loss weight {red}",
         "loss t(x: {T}[N, C], y: {T}[N, C], w: {T}[C]) = "
         f'multilabel_soft_margin_loss(x, y, w, reduction="{red}")',
         {"x": xm, "y": f32(rng.random((N, C)) < 0.4), "w": cw},
         lambda x, y, w, red=red: F.multilabel_soft_margin_loss(x, y, w, reduction=red), nc)
    for p in [1, 2]:
        case(g, f"multi_margin_loss p={p} {red}", "loss t(x: {T}[N, C], y: i64[N]) = "
             f'multi_margin_loss(x, y, p={p}, reduction="{red}")', {"x": xm, "y": tgt},
             lambda x, y, red=red, p=p: F.multi_margin_loss(x, y, p=p, reduction=red), nc)
        case(g, f"multi_margin_loss p={p} margin weight {red}",
             "loss t(x: {T}[N, C], y: i64[N], w: {T}[C]) = "
             f'multi_margin_loss(x, y, p={p}, margin=0.7, weight=w, reduction="{red}")',
             {"x": xm, "y": tgt, "w": cw},
             lambda x, y, w, red=red, p=p: F.multi_margin_loss(x, y, p=p, margin=0.7, weight=w,
                                                                reduction=red), nc, wrt=["x"])
ml = np.full((N, C), -1, np.int64)
for i in range(N):
    k = rng.integers(0, C + 1)
    ml[i, :k] = rng.permutation(C)[:k]
ml[1, :] = [3, 3, -1, 0, 2]  # a duplicate, then everything after the -1 is ignored
ml[2, :] = [-1, 1, 2, 3, 4]  # no class at all
for red in REDS:
    case(g, f"multilabel_margin_loss {red}", "loss t(x: {T}[N, C], y: i64[N, C]) = "
         f'multilabel_margin_loss(x, y, reduction="{red}")', {"x": xm, "y": ml},
         lambda x, y, red=red: F.multilabel_margin_loss(x, y, reduction=red), nc)
case(g, "multilabel_margin_loss one sample", "loss t(x: {T}[C], y: i64[C]) = "
     "multilabel_margin_loss(x, y)", {"x": xm[0], "y": ml[0]},
     lambda x, y: F.multilabel_margin_loss(x, y), {"C": C})
x1, x2m = randn(N), randn(N)
ys = signs(N)
for red in REDS:
    for margin in [0.0, 0.5]:
        case(g, f"margin_ranking_loss margin={margin} {red}",
             "loss t(a: {T}[N], b: {T}[N], y: {T}[N]) = "
             f'margin_ranking_loss(a, b, y, margin={margin}, reduction="{red}")',
             {"a": x1, "b": x2m, "y": ys},
             lambda a, b, y, red=red, m=margin: F.margin_ranking_loss(a, b, y, margin=m,
                                                                       reduction=red), {"N": N})
    case(g, f"hinge_embedding_loss {red}", "loss t(x: {T}[N, C], y: {T}[N, C]) = "
         f'hinge_embedding_loss(x, y, margin=0.8, reduction="{red}")', {"x": xm, "y": ym},
         lambda x, y, red=red: F.hinge_embedding_loss(x, y, margin=0.8, reduction=red), nc)
# at the kink: clamp_min passes the gradient where the hinge is exactly 0
case(g, "margin_ranking_loss at the kink", "loss t(a: {T}[N], b: {T}[N], y: {T}[N]) = "
     "margin_ranking_loss(a, b, y)", {"a": f32([1, 2, 3]), "b": f32([1, 2, 4]),
                                      "y": f32([1, -1, 1])},
     lambda a, b, y: F.margin_ranking_loss(a, b, y), {"N": 3}, gradcheck=False)

# ---- embeddings -------------------------------------------------------------------------------
g = "embedding"
E = 4
an, po, ne = randn(N, E), randn(N, E), randn(N, E)
ned = {"N": N, "E": E}
SRC3 = "loss t(a: {T}[N, E], p: {T}[N, E], n: {T}[N, E]) = "
# a negative at the anchor, one next to the positive: distances of the
# order of eps, where finite differences with steps of 1e-6 cannot follow
ne0 = ne.copy()
ne0[0] = an[0]
ne0[1] = f32(po[1] + 0.01)
case(g, "triplet_margin_loss degenerate negatives",
     SRC3 + 'triplet_margin_loss(a, p, n, swap=true, reduction="none")',
     {"a": an, "p": po, "n": ne0},
     lambda a, p, n: F.triplet_margin_loss(a, p, n, swap=True, reduction="none"), ned,
     gradcheck=False)
for red in REDS:
    case(g, f"triplet_margin_loss {red}", SRC3 + f'triplet_margin_loss(a, p, n, reduction="{red}")',
         {"a": an, "p": po, "n": ne},
         lambda a, p, n, red=red: F.triplet_margin_loss(a, p, n, reduction=red), ned)
    case(g, f"triplet_margin_loss swap p=1 {red}",
         SRC3 + f'triplet_margin_loss(a, p, n, margin=0.5, p=1, eps=1e-3, swap=true, '
                f'reduction="{red}")', {"a": an, "p": po, "n": ne},
         lambda a, p, n, red=red: F.triplet_margin_loss(a, p, n, margin=0.5, p=1, eps=1e-3,
                                                        swap=True, reduction=red), ned,
         gradcheck=False)
    case(g, f"triplet_margin_loss p=3 {red}",
         SRC3 + f'triplet_margin_loss(a, p, n, margin=2.0, p=3, reduction="{red}")',
         {"a": an, "p": po, "n": ne},
         lambda a, p, n, red=red: F.triplet_margin_loss(a, p, n, margin=2.0, p=3, reduction=red),
         ned)
    case(g, f"cosine_embedding_loss {red}",
         "loss t(a: {T}[N, E], b: {T}[N, E], y: {T}[N]) = "
         f'cosine_embedding_loss(a, b, y, margin=0.2, reduction="{red}")',
         {"a": an, "b": po, "y": ys},
         lambda a, b, y, red=red: F.cosine_embedding_loss(a, b, y, margin=0.2, reduction=red),
         ned)
case(g, "cosine_embedding_loss one pair", "loss t(a: {T}[E], b: {T}[E], y: {T}) = "
     "cosine_embedding_loss(a, b, y)", {"a": an[0], "b": po[0], "y": f32(-1.0)},
     lambda a, b, y: F.cosine_embedding_loss(a[None], b[None], y[None]), {"E": E},
     wrt=["a", "b"])
case(g, "pairwise_distance", "loss t(a: {T}[N, E], b: {T}[N, E]) = sum(pairwise_distance(a, b))",
     {"a": an, "b": po}, lambda a, b: F.pairwise_distance(a, b).sum(), ned)
case(g, "cosine_similarity", "loss t(a: {T}[N, E], b: {T}[N, E]) = sum(cosine_similarity(a, b))",
     {"a": an, "b": po}, lambda a, b: F.cosine_similarity(a, b).sum(), ned)
for red in REDS:
    case(g, f"triplet_margin_with_distance_loss default {red}",
         SRC3 + f'triplet_margin_with_distance_loss(a, p, n, reduction="{red}")',
         {"a": an, "p": po, "n": ne},
         lambda a, p, n, red=red: F.triplet_margin_with_distance_loss(a, p, n, reduction=red),
         ned)
    case(g, f"triplet_margin_with_distance_loss cosine swap {red}",
         "fn cos_dist(x, y) = 1 - cosine_similarity(x, y)\n" + SRC3 +
         f'triplet_margin_with_distance_loss(a, p, n, distance_function=cos_dist, margin=0.3, '
         f'swap=true, reduction="{red}")', {"a": an, "p": po, "n": ne},
         lambda a, p, n, red=red: F.triplet_margin_with_distance_loss(
             a, p, n, distance_function=lambda x, y: 1 - F.cosine_similarity(x, y), margin=0.3,
             swap=True, reduction=red), ned, gradcheck=False)


def info_nce_ref(q, k, neg=None, t=0.1, red="mean", normalize=True):
    if normalize:
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        neg = F.normalize(neg, dim=-1) if neg is not None else None
    if neg is None:
        logits = q @ k.T
        lab = torch.arange(len(q))
    else:
        logits = torch.cat([(q * k).sum(-1, keepdim=True), q @ neg.T], dim=1)
        lab = torch.zeros(len(q), dtype=torch.long)
    return F.cross_entropy(logits / t, lab, reduction=red)


M = 4
negs = randn(M, E)
for red in REDS:
    case(g, f"info_nce {red}", "loss t(q: {T}[N, E], k: {T}[N, E]) = "
         f'info_nce(q, k, temperature=0.2, reduction="{red}")', {"q": an, "k": po},
         lambda q, k, red=red: info_nce_ref(q, k, t=0.2, red=red), ned)
    case(g, f"info_nce negatives {red}", "loss t(q: {T}[N, E], k: {T}[N, E], m: {T}[M, E]) = "
         f'info_nce(q, k, m, reduction="{red}")', {"q": an, "k": po, "m": negs},
         lambda q, k, m, red=red: info_nce_ref(q, k, m, red=red), {"N": N, "E": E, "M": M})
case(g, "info_nce unnormalized", "loss t(q: {T}[N, E], k: {T}[N, E]) = "
     "info_nce(q, k, temperature=0.5, normalize=false)", {"q": an, "k": po},
     lambda q, k: info_nce_ref(q, k, t=0.5, normalize=False), ned)


def nt_xent_ref(z, t=0.5, red="mean"):
    u = F.normalize(z, dim=-1)
    s = u @ u.T / t
    s = s.masked_fill(torch.eye(len(z), dtype=torch.bool), float("-inf"))
    pos = (torch.arange(len(z)) + len(z) // 2) % len(z)
    return F.cross_entropy(s, pos, reduction=red)


for red in REDS:
    case(g, f"nt_xent_loss {red}", "loss t(z: {T}[N, E]) = "
         f'nt_xent_loss(z, temperature=0.3, reduction="{red}")', {"z": randn(8, E)},
         lambda z, red=red: nt_xent_ref(z, 0.3, red), {"N": 8, "E": E})

# ---- focal, Dice, Tversky and their combinations ----------------------------------------------------
g = "segmentation"


def sigmoid_focal_ref(x, t, alpha=0.25, gamma=2.0, red="none"):
    # torchvision.ops.sigmoid_focal_loss
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[red]


fx = randn(N, C, scale=2)
ft = f32(rng.random((N, C)) < 0.3)
for red in REDS:
    case(g, f"sigmoid_focal_loss {red}", "loss t(x: {T}[N, C], t: {T}[N, C]) = "
         f'sigmoid_focal_loss(x, t, reduction="{red}")', {"x": fx, "t": ft},
         lambda x, t, red=red: sigmoid_focal_ref(x, t, red=red), nc)
case(g, "sigmoid_focal_loss alpha gamma soft targets", "loss t(x: {T}[N, C], t: {T}[N, C]) = "
     'sigmoid_focal_loss(x, t, alpha=0.6, gamma=1.5, reduction="sum")', {"x": fx, "t": t01},
     lambda x, t: sigmoid_focal_ref(x, t, 0.6, 1.5, "sum"), nc)
case(g, "sigmoid_focal_loss no alpha gamma=0", "loss t(x: {T}[N, C], t: {T}[N, C]) = "
     'sigmoid_focal_loss(x, t, alpha=-1, gamma=0, reduction="mean")', {"x": fx, "t": ft},
     lambda x, t: sigmoid_focal_ref(x, t, -1, 0.0, "mean"), nc)
case(g, "sigmoid_focal_loss run-time alpha gamma",
     "loss t(x: {T}[N, C], t: {T}[N, C], a: {T} = 0.25, gm: {T} = 2.0) = "
     'sigmoid_focal_loss(x, t, a, gm, reduction="mean")',
     {"x": fx, "t": ft, "a": f32(0.4), "gm": f32(3.0)},
     lambda x, t, a, gm: sigmoid_focal_ref(x, t, a, gm, "mean"), nc, wrt=["x", "a", "gm"])
# the seed article's FocalLoss: alpha * (1 - exp(-bce))^gamma * bce, mean
case(g, "seed article FocalLoss", "loss t(x: {T}[N, C], t: {T}[N, C]) = "
     '0.25 * sigmoid_focal_loss(x, t, alpha=-1, gamma=2.0, reduction="mean")',
     {"x": fx, "t": ft}, lambda x, t: (0.25 * (1 - torch.exp(
         -F.binary_cross_entropy_with_logits(x, t, reduction="none"))) ** 2 *
         F.binary_cross_entropy_with_logits(x, t, reduction="none")).mean(), nc,
     wrt=["x"])  # exp(-bce) is p_t for 0/1 targets, but not its derivative in t


def focal_ref(x, y, alpha=None, gamma=2.0, ignore=-100, red="mean"):
    lsm = F.log_softmax(x, 1)
    if y.dtype.is_floating_point:
        a = alpha.view(1, -1) if alpha is not None else 1.0
        l = -(a * y * (1 - lsm.exp()) ** gamma * lsm).sum(1)
        return {"none": l, "mean": l.mean(), "sum": l.sum()}[red]
    valid = y != ignore
    ys = torch.where(valid, y, torch.zeros_like(y))
    logp = lsm.gather(1, ys[:, None])[:, 0]
    a = alpha[ys] if alpha is not None else 1.0
    l = torch.where(valid, -a * (1 - logp.exp()) ** gamma * logp, torch.zeros_like(logp))
    return {"none": l, "mean": l.sum() / valid.sum(), "sum": l.sum()}[red]


for red in REDS:
    case(g, f"focal_loss {red}", "loss t(x: {T}[N, C], y: i64[N]) = "
         f'focal_loss(x, y, reduction="{red}")', {"x": logits, "y": tgt_ign},
         lambda x, y, red=red: focal_ref(x, y, red=red), nc)
    case(g, f"focal_loss alpha gamma {red}", "loss t(x: {T}[N, C], y: i64[N], a: {T}[C]) = "
         f'focal_loss(x, y, alpha=a, gamma=1.5, reduction="{red}")',
         {"x": logits, "y": tgt, "a": cw},
         lambda x, y, a, red=red: focal_ref(x, y, a, 1.5, red=red), nc)
    case(g, f"focal_loss probabilities {red}", "loss t(x: {T}[N, C], p: {T}[N, C], a: {T}[C]) = "
         f'focal_loss(x, p, alpha=a, reduction="{red}")', {"x": logits, "p": pr, "a": cw},
         lambda x, p, a, red=red: focal_ref(x, p, a, red=red), nc)
case(g, "focal_loss extreme logits", "loss t(x: {T}[N, C], y: i64[N]) = focal_loss(x, y)",
     {"x": ext, "y": tgt}, lambda x, y: focal_ref(x, y), nc, gradcheck=False)


def dice_ref(p, t, smooth=1e-5, smooth_nr=0.0, squared=True):
    den = (p * p).sum() + (t * t).sum() if squared else p.sum() + t.sum()
    return 1 - (2 * (p * t).sum() + smooth_nr) / (den + smooth)


dp, dt = unif(2, H, W), f32(rng.random((2, H, W)) < 0.4)
hw = {"N": 2, "H": H, "W": W}
case(g, "dice_loss", "loss t(p: {T}[N, H, W], m: {T}[N, H, W]) = dice_loss(p, m)",
     {"p": dp, "m": dt}, lambda p, m: dice_ref(p, m), hw)
case(g, "dice_loss seed article", "loss t(p: {T}[N, H, W], m: {T}[N, H, W]) = "
     "dice_loss(p, m, smooth=1e-6, smooth_nr=1e-6, squared_pred=false)", {"p": dp, "m": dt},
     lambda p, m: dice_ref(p, m, 1e-6, 1e-6, False), hw)
case(g, "dice_loss empty mask", "loss t(p: {T}[N, H, W], m: {T}[N, H, W]) = "
     "dice_loss(p, m, smooth=1.0, smooth_nr=1.0)", {"p": dp * 0, "m": dt * 0},
     lambda p, m: dice_ref(p, m, 1.0, 1.0), hw)


def mc_dice_ref(x, y, weights=None, ignore=None, act="softmax", smooth=1e-5, smooth_nr=0.0,
                squared=True):
    p = {"softmax": lambda: F.softmax(x, 1), "sigmoid": lambda: torch.sigmoid(x),
         "none": lambda: x}[act]()
    t = y if y.dtype.is_floating_point else F.one_hot(y, x.shape[1]).movedim(-1, 1).to(x.dtype)
    total = 0
    for c in range(x.shape[1]):
        if c == ignore:
            continue
        d = dice_ref(p[:, c], t[:, c], smooth, smooth_nr, squared)
        total = total + (d * weights[c] if weights is not None else d)
    return total / x.shape[1]


sx = randn(2, C, H, W, scale=2)
sy = labels(2, C, H, W)
shw = {"N": 2, "C": C, "H": H, "W": W}
SRCS = "loss t(x: {T}[N, C, H, W], y: i64[N, H, W]) = "
case(g, "multiclass_dice_loss", SRCS + "multiclass_dice_loss(x, y)", {"x": sx, "y": sy},
     lambda x, y: mc_dice_ref(x, y), shw)
case(g, "multiclass_dice_loss weights ignore_index",
     "loss t(x: {T}[N, C, H, W], y: i64[N, H, W], w: {T}[C]) = "
     "multiclass_dice_loss(x, y, weights=w, ignore_index=2)", {"x": sx, "y": sy, "w": cw},
     lambda x, y, w: mc_dice_ref(x, y, w, 2), shw)
case(g, "multiclass_dice_loss sigmoid one-hot", "loss t(x: {T}[N, C], t: {T}[N, C]) = "
     'multiclass_dice_loss(x, t, activation="sigmoid", squared_pred=false, smooth=1.0, '
     'smooth_nr=1.0)', {"x": fx, "t": ft},
     lambda x, t: mc_dice_ref(x, t, act="sigmoid", smooth=1.0, smooth_nr=1.0, squared=False), nc)
case(g, "multiclass_dice_loss probabilities", "loss t(p: {T}[N, C], t: {T}[N, C]) = "
     'multiclass_dice_loss(p, t, activation="none")', {"p": pr, "t": ft},
     lambda p, t: mc_dice_ref(p, t, act="none"), nc)


def tversky_ref(p, t, alpha=0.5, beta=0.5, smooth=1e-5):
    tp, fp, fn = (p * t).sum(), (p * (1 - t)).sum(), ((1 - p) * t).sum()
    return 1 - (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)


case(g, "tversky_loss", "loss t(p: {T}[N, H, W], m: {T}[N, H, W]) = tversky_loss(p, m)",
     {"p": dp, "m": dt}, lambda p, m: tversky_ref(p, m), hw)
case(g, "tversky_loss alpha beta", "loss t(p: {T}[N, H, W], m: {T}[N, H, W]) = "
     "tversky_loss(p, m, alpha=0.3, beta=0.7, smooth=1.0)", {"p": dp, "m": dt},
     lambda p, m: tversky_ref(p, m, 0.3, 0.7, 1.0), hw)


def dice_ce_ref(x, y, alpha=0.5, w=None, ignore=-100, ls=0.0):
    ce = F.cross_entropy(x, y, w, ignore_index=ignore, label_smoothing=ls)
    valid = (y != ignore).unsqueeze(1)
    p = F.softmax(x, 1) * valid
    t = F.one_hot(torch.where(y == ignore, 0, y), x.shape[1]).movedim(-1, 1).to(x.dtype) * valid
    d = sum(dice_ref(p[:, c], t[:, c]) for c in range(x.shape[1])) / x.shape[1]
    return alpha * ce + (1 - alpha) * d


case(g, "dice_ce_loss", SRCS + "dice_ce_loss(x, y)", {"x": sx, "y": sy},
     lambda x, y: dice_ce_ref(x, y), shw)
syi = sy.copy()
syi[1, 0, :] = -100
case(g, "dice_ce_loss weight ignore smoothing",
     "loss t(x: {T}[N, C, H, W], y: i64[N, H, W], w: {T}[C]) = "
     "dice_ce_loss(x, y, alpha=0.3, weight=w, label_smoothing=0.1)", {"x": sx, "y": syi, "w": cw},
     lambda x, y, w: dice_ce_ref(x, y, 0.3, w, ls=0.1), shw, wrt=["x"])


def focal_dice_ref(x, t, alpha=0.25, gamma=2.0, lam=1.0):
    return sigmoid_focal_ref(x, t, alpha, gamma, "mean") + lam * dice_ref(torch.sigmoid(x), t)


case(g, "focal_dice_loss", "loss t(x: {T}[N, H, W], m: {T}[N, H, W]) = focal_dice_loss(x, m)",
     {"x": randn(2, H, W, scale=2), "m": dt}, lambda x, m: focal_dice_ref(x, m), hw)
case(g, "focal_dice_loss options", "loss t(x: {T}[N, H, W], m: {T}[N, H, W]) = "
     "focal_dice_loss(x, m, alpha=0.5, gamma=1.0, lambda_dice=0.3)",
     {"x": randn(2, H, W, scale=2), "m": dt}, lambda x, m: focal_dice_ref(x, m, 0.5, 1.0, 0.3),
     hw)

# ---- multi-task, loss scaling ---------------------------------------------------------------------------
g = "training"
lv = f32([0.3, -0.4, 0.1])
case(g, "multitask_loss", "loss t(p: {T}[N], q: {T}[N], x: {T}[N, C], y: i64[N], s: {T}[3]) = "
     "multitask_loss(s, mse_loss(p, q), cross_entropy(x, y), l1_loss(p, q))",
     {"p": x, "q": y, "x": logits, "y": tgt, "s": lv},
     lambda p, q, x, y, s: sum(torch.exp(-s[i]) * l + s[i] for i, l in enumerate(
         [F.mse_loss(p, q), F.cross_entropy(x, y), F.l1_loss(p, q)])), nc)
case(g, "weighted_sum_loss", "loss t(p: {T}[N], q: {T}[N], x: {T}[N, C], y: i64[N], w: {T}[2]) = "
     "weighted_sum_loss(w, l1_loss(p, q), cross_entropy(x, y))",
     {"p": x, "q": y, "x": logits, "y": tgt, "w": f32([0.7, 1.3])},
     lambda p, q, x, y, w: w[0] * F.l1_loss(p, q) + w[1] * F.cross_entropy(x, y), nc)
case(g, "scale_loss", "loss t(x: {T}[N, C], y: i64[N]) = scale_loss(cross_entropy(x, y), 1024)",
     {"x": logits, "y": tgt}, lambda x, y: 1024 * F.cross_entropy(x, y), nc)


# ---- CTC ------------------------------------------------------------------------------------------
# T is fixed when the loss is compiled (the recursion is unrolled): the
# cases set it. log_probs come from log_softmax of logits inside the loss
# for the finite-difference check (PyTorch's gradient with respect to
# log_probs adds exp(log_probs), which is not their derivative); they are
# also compared as given, against PyTorch's gradient.
g = "ctc"


def ctc_case(name, T, Nb, Cc, S, tl, il, red="mean", zero_inf=False, blank=0, concat=False,
             single=False, wrt=None, seed_logits=None):
    logits = randn(T, Nb, Cc) if seed_logits is None else seed_logits
    lp = f32(torch.log_softmax(torch.tensor(logits), -1).numpy())
    tgt = rng.integers(1, Cc, (Nb, S)).astype(np.int64)
    if blank != 0:
        tgt = np.where(tgt == blank, 0, tgt)
    tl = np.array(tl, np.int64)
    il = np.array(il, np.int64)
    opts = f'blank={blank}, reduction="{red}", zero_infinity={str(zero_inf).lower()}'
    dims = {"T": T, "N": Nb, "C": Cc, "S": S}
    if single:
        lp, tgt, il, tl = lp[:, 0], tgt[0], np.array(il[0]), np.array(tl[0])
        src = f"loss t(lp: {{T}}[T, C], y: i64[S], il: i64, tl: i64) = ctc_loss(lp, y, il, tl, {opts})"
        dims = {"T": T, "C": Cc, "S": S}
    elif concat:
        tgt = np.concatenate([tgt[i, :tl[i]] for i in range(Nb)])
        dims = {"T": T, "N": Nb, "C": Cc, "S": len(tgt)}
        src = (f"loss t(lp: {{T}}[T, N, C], y: i64[S], il: i64[N], tl: i64[N]) = "
               f"ctc_loss(lp, y, il, tl, {opts})")
    else:
        src = (f"loss t(lp: {{T}}[T, N, C], y: i64[N, S], il: i64[N], tl: i64[N]) = "
               f"ctc_loss(lp, y, il, tl, {opts})")
    ref = lambda lp, y, il, tl: F.ctc_loss(lp, y, il, tl, blank=blank, reduction=red,
                                          zero_infinity=zero_inf)
    inputs = {"lp": lp, "y": tgt, "il": il, "tl": tl}
    case(g, name, src, inputs, ref, dims, settings={"T": T}, wrt=wrt, gradcheck=False)
    if not single and not concat:
        # the same through log_softmax, checked by finite differences too
        src2 = src.replace("lp: {T}[T, N, C]", "x: {T}[T, N, C]").replace(
            "ctc_loss(lp,", "ctc_loss(log_softmax(x, axis=C),")
        ref2 = lambda x, y, il, tl: ref(torch.log_softmax(x, -1), y, il, tl)
        case(g, name + " from logits", src2, {"x": logits, "y": tgt, "il": il, "tl": tl}, ref2,
             dims, settings={"T": T}, wrt=wrt and ["x"],
             gradcheck=not zero_inf or wrt is not None)


for red in REDS:
    ctc_case(f"ctc_loss {red}", 6, 3, 5, 3, [3, 2, 1], [6, 5, 6], red=red)
ctc_case("ctc_loss repeated labels", 7, 2, 4, 4, [4, 3], [7, 7],
         seed_logits=None)
ctc_case("ctc_loss empty target", 4, 2, 4, 2, [0, 2], [4, 3])
ctc_case("ctc_loss blank=2", 5, 2, 4, 2, [2, 1], [5, 4], blank=2)
ctc_case("ctc_loss concatenated targets", 5, 3, 4, 3, [2, 3, 1], [5, 5, 4])
ctc_case("ctc_loss one sample", 5, 1, 4, 2, [2], [5], single=True)
ctc_case("ctc_loss N=1", 5, 1, 4, 2, [2], [4])
# a target too long for its input: an infinite loss (PyTorch's gradient is
# NaN there, lossc's 0: only the loss is compared), or 0 with zero_infinity
ctc_case("ctc_loss infeasible", 3, 2, 4, 3, [3, 2], [3, 3], red="none", wrt=[])
ctc_case("ctc_loss infeasible zero_infinity", 3, 2, 4, 3, [3, 2], [3, 3], red="sum",
         zero_inf=True)
ctc_case("ctc_loss T=20", 20, 2, 6, 5, [5, 3], [20, 17])
# the one case small enough for the kernels (see SKIPS in test_lib_torch.c)
ctc_case("kernels ctc_loss T=3", 3, 3, 4, 2, [2, 1, 0], [3, 2, 3], red="sum", single=False)

# ---- output ---------------------------------------------------------------------------------------
def num(v):
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(v)


def arr(a, short=False):
    """ndim, shape, ':', values. `short` (float inputs, which are float32
    values) writes the fewest digits that read back to the same float32: the
    test rounds float inputs to float32 after reading them."""
    a = np.asarray(a)
    vals = [str(np.float32(v)) if short and math.isfinite(v) else num(v) for v in a.reshape(-1)]
    return " ".join([str(a.ndim)] + [str(s) for s in a.shape] + [":"] + vals)


os.makedirs(OUT, exist_ok=True)
for group, cases in groups.items():
    lines = [f"# {group}.cases - generated by tests/lib/gen_torch_cases.py with PyTorch "
             f"{torch.__version__}: do not edit"]
    for c in cases:
        lines.append(f"case {c['name']}")
        lines.append("src " + c["src"].replace("\n", "\\n"))
        for k, v in c["settings"].items():
            lines.append(f"set {k}={v}")
        for k, v in c["dims"].items():
            lines.append(f"dim {k} {v}")
        for k, v in c["inputs"].items():
            kind = "f" if v.dtype == np.float64 else "i"
            lines.append(f"in {k} {kind} {arr(v, short=kind == 'f')}")
        lines.append(f"loss {arr(c['loss'])}")
        for k, gr in zip(c["wrt"], c["grads"]):
            lines.append(f"grad {k} {arr(gr)}")
        if not c["gradcheck"]:
            lines.append("nogradcheck")
        lines.append("end")
    with open(os.path.join(OUT, f"{group}.cases"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{group}: {len(cases)} cases")
print(f"PyTorch's own float32 misses the f32 tolerance in {len(torch_f32_misses)} cases:",
      ", ".join(torch_f32_misses))
