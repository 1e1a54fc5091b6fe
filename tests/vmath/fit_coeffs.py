#!/usr/bin/python3
"""fit_coeffs.py - fit the polynomial coefficients of codegen/vmath.c.

Each approximation is a weighted minimax polynomial found by the Remez
exchange algorithm in mpmath at 40 digits, then rounded to the target type
(f32 or f64) one coefficient at a time, the higher ones refitted after each
rounding. The script prints the C tables that vmath.c holds, with the
weighted error before and after rounding, in bits.

    /usr/bin/python3 tests/vmath/fit_coeffs.py          # print the tables

The approximations (see the comment at the top of vmath.c):

  EXPM1_Q  expm1(r) = r + r^2 Q(r)  on |r| <= ln2/2 (+ slack for rounding).
           Weighted by r^2/expm1(r): the relative error of expm1, hence also of
           exp(r) = 1 + r + r^2 Q(r), whose relative error is smaller still.
  LOG_P    log(1+f) = 2 atanh(s) = 2s + s z P(z), s = f/(2+f), z = s^2, with
           f in [sqrt(1/2)-1, sqrt(2)-1], so |s| <= 3-2sqrt(2) = 0.1716.
           Weighted by z: the error of s*z*P relative to log(1+f) ~ 2s.
"""
import sys

import mpmath as mp

mp.mp.dps = 40


def expm1_q(r):
    """(e^r - 1 - r) / r^2 as its Taylor series (no cancellation at 0)."""
    s, t = mp.mpf(0), mp.mpf(1)
    for k in range(2, 60):
        t = t / k if k > 2 else mp.mpf(1) / 2
        if k > 2:
            t = t * r
        s += t
    return s


def log_p(z):
    """(2 atanh(s) - 2s) / (s z) = sum 2 z^k / (2k + 3)."""
    return mp.fsum(2 * z**k / (2 * k + 3) for k in range(0, 40))


def poly(c, x):
    y = mp.mpf(0)
    for a in reversed(c):
        y = y * x + a
    return y


def remez(g, w, a, b, n, fixed=(), iters=40, grid=3000):
    """Coefficients c[0..n] minimizing max |w(x) (g(x) - sum c_i x^i)| on [a, b],
    with c[0..len(fixed)-1] = fixed."""
    a, b = mp.mpf(a), mp.mpf(b)
    fixed = list(fixed)
    free = list(range(len(fixed), n + 1))
    m = len(free) + 1
    h = lambda x: g(x) - poly(fixed, x)
    ref = [(a + b) / 2 - (b - a) / 2 * mp.cos(mp.pi * j / (m - 1)) for j in range(m)]
    xs = [a + (b - a) * (1 - mp.cos(mp.pi * j / grid)) / 2 for j in range(grid + 1)]
    hx = [h(x) for x in xs]
    wx = [w(x) for x in xs]
    c = None
    for _ in range(iters):
        A = mp.matrix(m, m)
        rhs = mp.matrix(m, 1)
        for j, x in enumerate(ref):
            for col, i in enumerate(free):
                A[j, col] = x**i
            A[j, m - 1] = (-1) ** j / w(x)
            rhs[j] = h(x)
        sol = mp.lu_solve(A, rhs)
        c = fixed + [sol[col] for col in range(m - 1)]
        E = abs(sol[m - 1])
        err = [wx[j] * (hx[j] - poly([0] * len(fixed) + c[len(fixed):], xs[j]))
               for j in range(len(xs))]
        # one extremum per run of equal sign
        runs = []
        for j, e in enumerate(err):
            if runs and (e >= 0) == (runs[-1][1] >= 0):
                if abs(e) > abs(runs[-1][1]):
                    runs[-1] = (j, e)
            else:
                runs.append((j, e))
        while len(runs) > m:
            # drop the smallest extremum; merge the neighbours it separated
            k = min(range(len(runs)), key=lambda i: abs(runs[i][1]))
            runs.pop(k)
            if 0 < k < len(runs) and (runs[k - 1][1] >= 0) == (runs[k][1] >= 0):
                keep = max(runs[k - 1], runs[k], key=lambda t: abs(t[1]))
                runs[k - 1:k + 1] = [keep]
        if len(runs) < m:
            break
        ref = [xs[j] for j, _ in runs]
        emax = max(abs(e) for _, e in runs)
        if emax - E <= E * mp.mpf("1e-4"):
            break
    return c


def round_to(c, bits):
    with mp.workprec(bits):
        return [+x for x in c]


def max_err(g, w, c, a, b, pts=5000):
    a, b = mp.mpf(a), mp.mpf(b)
    return max(abs(w(x) * (g(x) - poly(c, x)))
               for x in (a + (b - a) * j / pts for j in range(pts + 1)))


def fit(name, g, w, a, b, deg, bits):
    """Round the coefficients to the target type: either all at once, or one at
    a time, lowest degree first, refitting the higher ones after each rounding
    so that they absorb it. Keep whichever is better."""
    c = remez(g, w, a, b, deg)
    e0 = max_err(g, w, c, a, b)
    best = round_to(c, bits)
    e1 = max_err(g, w, best, a, b)
    seq = []
    for i in range(deg + 1):
        seq = round_to(remez(g, w, a, b, deg, fixed=seq)[:i + 1], bits)
    e2 = max_err(g, w, seq, a, b)
    if e2 < e1:
        best, e1 = seq, e2
    ctype = "float" if bits == 24 else "double"
    print(f"/* {name}: degree {deg}, weighted error 2^{float(mp.log(e0, 2)):.1f} "
          f"(2^{float(mp.log(e1, 2)):.1f} with {ctype} coefficients) */")
    vals = ", ".join(float(x).hex() for x in best)
    print(f"static const double {name}[] = {{{vals}}};")
    return best


def main():
    ln2h = mp.log(2) / 2 * (1 + mp.mpf("1e-4"))
    smax = 3 - 2 * mp.sqrt(2)
    zmax = smax**2 * (1 + mp.mpf("1e-6"))
    # The weight vanishes at 0 (the error of Q matters less there, r^2 Q << r):
    # floor it so that the Remez system stays regular.
    w_expm1 = lambda r: max(abs(r * r / mp.expm1(r)) if r != 0 else 0, mp.mpf(1) / 64)
    w_logp = lambda z: max(z, zmax / 64)
    fit("expm1_q_f32", expm1_q, w_expm1, -ln2h, ln2h, 5, 24)
    fit("expm1_q_f64", expm1_q, w_expm1, -ln2h, ln2h, 10, 53)
    fit("log_p_f32", log_p, w_logp, 0, zmax, 2, 24)
    fit("log_p_f64", log_p, w_logp, 0, zmax, 6, 53)
    return 0


if __name__ == "__main__":
    sys.exit(main())
