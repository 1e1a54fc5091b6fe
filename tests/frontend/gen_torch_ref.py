#!/usr/bin/python3
"""Write tests/frontend/torch_ref.h: reference values from PyTorch (float64)
for the loss library and the examples, which test_torch_ref.c checks through
the frontend and the reference interpreter.

    /usr/bin/python3 tests/frontend/gen_torch_ref.py > tests/frontend/torch_ref.h

Each case is a .loss source (or an example file) with named inputs, the
sizes of its dims, compile-time settings, and the expected `loss` output in
canonical dim order. Inputs are fixed pseudo-random numbers (seeded), so the
header only changes when a case changes.
"""
import torch
import torch.nn.functional as F

torch.manual_seed(20240601)
D = torch.float64
cases = []


def case(name, out, inputs, dims, source=None, file=None, settings=""):
    cases.append(dict(name=name, out=out.detach().reshape(-1), inputs=inputs, dims=dims,
                      source=source, file=file, settings=settings))


def randn(*s):
    return torch.randn(*s, dtype=D)


def rand(*s):
    return torch.rand(*s, dtype=D)


def labels(n, c):
    return torch.randint(0, c, (n,))


# ---- the library: each function with its options -------------------------------
N, C = 6, 4
x, y = randn(N), randn(N)
for red in ["mean", "sum", "none"]:
    case(f"mse_loss {red}", F.mse_loss(x, y, reduction=red), {"a": x, "b": y}, {"N": N},
         source=f'loss t(a: f64[N], b: f64[N]) = mse_loss(a, b, reduction="{red}")')
    case(f"l1_loss {red}", F.l1_loss(x, y, reduction=red), {"a": x, "b": y}, {"N": N},
         source=f'loss t(a: f64[N], b: f64[N]) = l1_loss(a, b, reduction="{red}")')
x2 = x * 2
case("huber_loss delta", F.huber_loss(x2, y, delta=0.5), {"a": x2, "b": y}, {"N": N},
     source="loss t(a: f64[N], b: f64[N]) = huber_loss(a, b, delta=0.5)")
case("huber_loss sum", F.huber_loss(x2, y, reduction="sum"), {"a": x2, "b": y}, {"N": N},
     source='loss t(a: f64[N], b: f64[N]) = huber_loss(a, b, "sum")')
case("smooth_l1_loss beta", F.smooth_l1_loss(x2, y, beta=0.7), {"a": x2, "b": y}, {"N": N},
     source="loss t(a: f64[N], b: f64[N]) = smooth_l1_loss(a, b, beta=0.7)")
case("smooth_l1_loss beta=0", F.smooth_l1_loss(x2, y, beta=0.0), {"a": x2, "b": y},
     {"N": N}, source="loss t(a: f64[N], b: f64[N]) = smooth_l1_loss(a, b, beta=0.0)")

lg, tg = randn(N, C) * 3, rand(N, C)
lg[0, 0], lg[1, 1] = 40.0, -40.0
w, pw = rand(C) + 0.5, rand(C) * 3
case("bce_with_logits", F.binary_cross_entropy_with_logits(lg, tg), {"x": lg, "t": tg},
     {"N": N, "C": C},
     source="loss t(x: f64[N, C], t: f64[N, C]) = binary_cross_entropy_with_logits(x, t)")
case("bce_with_logits weight pos_weight sum",
     F.binary_cross_entropy_with_logits(lg, tg, weight=w, pos_weight=pw, reduction="sum"),
     {"x": lg, "t": tg, "w": w, "pw": pw}, {"N": N, "C": C},
     source="loss t(x: f64[N, C], t: f64[N, C], w: f64[C], pw: f64[C]) = "
            'binary_cross_entropy_with_logits(x, t, w, reduction="sum", pos_weight=pw)')

logits, tgt = randn(N, C) * 2, labels(N, C)
tgt[2] = 1
tgt_ign = tgt.clone()
tgt_ign[0] = -100
tgt_ign[3] = 2
cw = rand(C) + 0.1
lsm = F.log_softmax(logits, 1)
ce_src = "loss t(x: f64[N, C], y: i64[N], w: f64[C]) = "
for red in ["mean", "sum", "none"]:
    case(f"nll_loss weight ignore {red}",
         F.nll_loss(lsm, tgt_ign, weight=cw, ignore_index=-100, reduction=red),
         {"x": lsm, "y": tgt_ign, "w": cw}, {"N": N, "C": C},
         source=ce_src + f'nll_loss(x, y, weight=w, reduction="{red}")')
    case(f"cross_entropy {red}", F.cross_entropy(logits, tgt, reduction=red),
         {"x": logits, "y": tgt}, {"N": N, "C": C},
         source=f'loss t(x: f64[N, C], y: i64[N]) = cross_entropy(x, y, reduction="{red}")')
    case(f"cross_entropy weight ignore_index smoothing {red}",
         F.cross_entropy(logits, tgt, weight=cw, ignore_index=1, label_smoothing=0.2,
                         reduction=red),
         {"x": logits, "y": tgt, "w": cw}, {"N": N, "C": C},
         source=ce_src + "cross_entropy(x, y, w, ignore_index=1, "
                         f'reduction="{red}", label_smoothing=0.2)')
case("cross_entropy smoothing, no weight",
     F.cross_entropy(logits, tgt_ign, label_smoothing=0.1),
     {"x": logits, "y": tgt_ign}, {"N": N, "C": C},
     source="loss t(x: f64[N, C], y: i64[N]) = cross_entropy(x, y, label_smoothing=0.1)")
case("cross_entropy run-time smoothing",
     F.cross_entropy(logits, tgt, label_smoothing=0.3),
     {"x": logits, "y": tgt, "ls": torch.tensor([0.3], dtype=D)}, {"N": N, "C": C},
     source="loss t(x: f64[N, C], y: i64[N], ls: f64 = 0.0) = "
            "cross_entropy(x, y, label_smoothing=ls)")
case("cross_entropy one sample",
     F.cross_entropy(logits[0], tgt[0]), {"x": logits[0], "y": tgt[0:1]}, {"C": C},
     source="loss t(x: f64[C], y: i64) = cross_entropy(x, y)")
probs = F.softmax(randn(N, C), 1)
for red in ["mean", "sum", "none"]:
    case(f"cross_entropy probabilities weight smoothing {red}",
         F.cross_entropy(logits, probs, weight=cw, label_smoothing=0.15, reduction=red),
         {"x": logits, "p": probs, "w": cw}, {"N": N, "C": C},
         source="loss t(x: f64[N, C], p: f64[N, C], w: f64[C]) = "
                f'cross_entropy(x, p, w, reduction="{red}", label_smoothing=0.15)')
case("cross_entropy probabilities", F.cross_entropy(logits, probs),
     {"x": logits, "p": probs}, {"N": N, "C": C},
     source="loss t(x: f64[N, C], p: f64[N, C]) = cross_entropy(x, p)")
all_ign = torch.full((N,), 3)
case("cross_entropy every label ignored",
     F.cross_entropy(logits, all_ign, ignore_index=3), {"x": logits, "y": all_ign},
     {"N": N, "C": C},
     source="loss t(x: f64[N, C], y: i64[N]) = cross_entropy(x, y, ignore_index=3)")

# ---- the examples, against PyTorch's functions or its ops ------------------------
x, y = randn(N), randn(N)
case("examples/huber", F.huber_loss(x * 2, y), {"pred": x * 2, "target": y}, {"N": N},
     file="examples/huber.loss")
case("examples/mse", F.mse_loss(x, y), {"pred": x, "target": y}, {"N": N},
     file="examples/mse.loss")
bl, bt = randn(N) * 5, rand(N)
case("examples/bce_logits", F.binary_cross_entropy_with_logits(bl, bt),
     {"logits": bl, "target": bt}, {"N": N}, file="examples/bce_logits.loss")
for red in ["mean", "sum", "none"]:
    case(f"examples/ce {red}", F.cross_entropy(logits, tgt, weight=cw, reduction=red),
         {"logits": logits, "y": tgt, "weight": cw}, {"N": N, "C": C},
         file="examples/ce.loss", settings=f"reduction={red}")
case("examples/weighted_ce", F.cross_entropy(logits, tgt, weight=cw),
     {"logits": logits, "y": tgt, "class_weights": cw}, {"N": N, "C": C},
     file="examples/weighted_ce.loss")

# torchvision.ops.sigmoid_focal_loss, written with torch ops
def sigmoid_focal(inputs, targets, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(inputs)
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return (alpha_t * loss).mean()


ft = (rand(N, C) > 0.5).to(D)
case("examples/focal", sigmoid_focal(lg, ft), {"logits": lg, "target": ft},
     {"N": N, "C": C}, file="examples/focal.loss")


def dice(p, t, smooth):
    p, t = p.reshape(-1), t.reshape(-1)
    return 1 - (2.0 * (p * t).sum() + smooth) / (p.sum() + t.sum() + smooth)


H, W = 3, 5
pm, mask = rand(2, H, W), (rand(2, H, W) > 0.6).to(D)
case("examples/dice", dice(pm, mask, 1e-6), {"pred": pm, "target": mask},
     {"N": 2, "H": H, "W": W}, file="examples/dice.loss")
case("examples/dice_ce",
     0.5 * F.cross_entropy(logits, tgt) +
     0.5 * dice(F.softmax(logits, 1), F.one_hot(tgt, C).to(D), 1e-6),
     {"logits": logits, "y": tgt}, {"N": N, "C": C}, file="examples/dice_ce.loss")
fl = randn(2, H, W) * 3
case("examples/focal_dice", sigmoid_focal(fl, mask) + dice(torch.sigmoid(fl), mask, 1.0),
     {"logits": fl, "target": mask}, {"N": 2, "H": H, "W": W},
     file="examples/focal_dice.loss")
s = torch.tensor([0.3, -0.4], dtype=D)
case("examples/multitask",
     torch.exp(-s[0]) * F.mse_loss(x, y) + s[0] +
     torch.exp(-s[1]) * F.cross_entropy(logits, tgt) + s[1],
     {"reg_pred": x, "reg_target": y, "logits": logits, "labels": tgt, "log_vars": s},
     {"N": N, "C": C}, file="examples/multitask.loss")
Dm = 3
a, p, n = randn(N, Dm), randn(N, Dm), randn(N, Dm)
case("examples/triplet", F.triplet_margin_loss(a, p, n),
     {"anchor": a, "positive": p, "negative": n}, {"N": N, "D": Dm},
     file="examples/triplet.loss")
x1, x2 = randn(N), randn(N)
ry = torch.tensor([1, -1, 1, 1, -1, -1], dtype=D)
case("examples/margin_ranking", F.margin_ranking_loss(x1, x2, ry, margin=0.0),
     {"x1": x1, "x2": x2, "y": ry}, {"N": N}, file="examples/margin_ranking.loss")
q = F.softmax(randn(N, C), 1)
q[0, 1] = 0.0
case("examples/kl_div",
     F.kl_div(F.log_softmax(logits, 1), q, reduction="batchmean"),
     {"student_logits": logits, "target": q}, {"N": N, "C": C}, file="examples/kl_div.loss")
z = randn(N, Dm)
zn = z @ z.T / 0.1
zn.fill_diagonal_(float("-inf"))
pos = torch.arange(N).add(N // 2).remainder(N)
case("examples/info_nce", F.cross_entropy(zn, pos), {"z": z}, {"N": N, "D": Dm},
     file="examples/info_nce.loss")


# ---- output -------------------------------------------------------------------------
def c_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def c_doubles(t):
    return ", ".join(repr(float(v)) if v == v and abs(v) != float("inf")
                     else ("NAN" if v != v else ("INFINITY" if v > 0 else "-INFINITY"))
                     for v in t.reshape(-1).tolist())


print("/* torch_ref.h - generated by tests/frontend/gen_torch_ref.py with PyTorch "
      f"{torch.__version__} in float64: do not edit. */")
for i, c in enumerate(cases):
    for name, t in c["inputs"].items():
        print(f"static const double ref{i}_{name}[] = {{{c_doubles(t.to(D))}}};")
    print(f"static const ref_input ref{i}_inputs[] = {{"
          + ", ".join(f"{{{c_str(k)}, ref{i}_{k}}}" for k in c["inputs"]) + "};")
    print(f"static const ref_dim ref{i}_dims[] = {{"
          + ", ".join(f"{{{c_str(k)}, {v}}}" for k, v in c["dims"].items()) + "};")
    print(f"static const double ref{i}_want[] = {{{c_doubles(c['out'])}}};")
print("static const ref_case ref_cases[] = {")
for i, c in enumerate(cases):
    src = c_str(c["source"]) if c["source"] else "NULL"
    fil = c_str(c["file"]) if c["file"] else "NULL"
    print(f"    {{{c_str(c['name'])}, {src}, {fil}, {c_str(c['settings'])}, ref{i}_dims, "
          f"{len(c['dims'])}, ref{i}_inputs, {len(c['inputs'])}, ref{i}_want, "
          f"{c['out'].numel()}}},")
print("};")
