"""Independent golden values for the few-step samplers (test/math/samplers-fewstep.test.ts), in pure-Python float64
(no numpy). Run: /usr/bin/python3 test/math/golden/fewstep.py
Written from the papers and the reference implementations' documented formulas, not from lib/:
  - Karras et al. 2022 eq. 5 and Algorithm 1 (k-diffusion get_sigmas_karras, sample_euler, sample_heun);
  - diffusers' _sigma_to_t (fractional timestep of a sigma: linear interpolation in log sigma);
  - Lu et al. 2022 (DPM-Solver++) Algorithm 2 / diffusers' multistep_dpm_solver_second_order_update, "midpoint".
Code index t = 0 .. T-1 is the papers' step t+1."""
import math

T = 1000
# numpy.linspace(1e-4, 0.02, 1000): start + i*step, the end point exact
step = (0.02 - 1e-4) / (T - 1)
betas = [1e-4 + i * step for i in range(T)]
betas[-1] = 0.02
ac = []
p = 1.0
for b in betas:
    p *= 1 - b
    ac.append(p)
sig = [math.sqrt((1 - a) / a) for a in ac]  # VP -> VE sigma(t), increasing in t
log_sig = [math.log(s) for s in sig]


def karras(n, smin, smax, rho=7.0):
    """k-diffusion get_sigmas_karras: ramp = linspace(0, 1, n), then an appended 0."""
    ramp = [0.0] if n == 1 else [i / (n - 1) for i in range(n)]
    lo, hi = smin ** (1 / rho), smax ** (1 / rho)
    return [(hi + r * (lo - hi)) ** rho for r in ramp] + [0.0]


def sigma_to_t(s):
    """diffusers EulerDiscreteScheduler._sigma_to_t, written out for one sigma."""
    ls = math.log(max(s, 1e-10))
    low_idx = min(sum(1 for v in log_sig if ls - v >= 0) - 1, T - 2)  # cumsum(dists >= 0).argmax() for ascending log_sig
    high_idx = low_idx + 1
    low, high = log_sig[low_idx], log_sig[high_idx]
    w = min(max((low - ls) / (low - high), 0.0), 1.0)
    return (1 - w) * low_idx + w * high_idx


print('karras n=10 smin=0.002 smax=80 rho=7', karras(10, 0.002, 80.0))
print('karras n=1', karras(1, 0.002, 80.0))
print('linear sigma(0), sigma(999)', sig[0], sig[T - 1])
ks = karras(10, sig[0], sig[T - 1])
print('linear karras n=10 sigmas', ks)
print('linear karras n=10 timesteps', [sigma_to_t(s) for s in ks[:-1]])

# ---- Euler / Heun, linear schedule, n = 5 Karras levels over [sigma(0), sigma(999)], the step from sigma_1 to sigma_2.
k5 = karras(5, sig[0], sig[T - 1])
s1, s2 = k5[1], k5[2]
print('linear karras n=5', k5, 't1, t2', sigma_to_t(s1), sigma_to_t(s2))
x_vp = 0.3
xs = x_vp * math.sqrt(1 + s1 * s1)           # x_sigma = x_VP * sqrt(1 + sigma^2)
# x0-model: D(x; sigma_1) = 0.2, D(predictor; sigma_2) = 0.25
D1, D2 = 0.2, 0.25
d1 = (xs - D1) / s1
xe = xs + (s2 - s1) * d1                      # Euler / Heun predictor, in sigma form
d2 = (xe - D2) / s2
xh = xs + (s2 - s1) * (0.5 * d1 + 0.5 * d2)   # Heun
print('euler x0-model: predictor VP', xe / math.sqrt(1 + s2 * s2), 'heun VP', xh / math.sqrt(1 + s2 * s2))
# eps-model at sigma_1 with eps = -0.7: d = eps; Euler = DDIM at the two levels
e = -0.7
xe_eps = xs + (s2 - s1) * e
a1, a2 = 1 / (1 + s1 * s1), 1 / (1 + s2 * s2)
x0_eps = (x_vp - math.sqrt(1 - a1) * e) / math.sqrt(a1)
print('euler eps-model VP', xe_eps / math.sqrt(1 + s2 * s2), 'ddim at the same levels', math.sqrt(a2) * x0_eps + math.sqrt(1 - a2) * e, 'x0', x0_eps)
# last step (sigma' = 0) from sigma_4 = sigma(0): returns x0 = x_sigma - sigma * eps
s4 = k5[4]
print('euler last step', x_vp * math.sqrt(1 + s4 * s4) - s4 * e)

# ---- DPM-Solver++(2M), linear schedule, custom timesteps [700, 500, 300], eps-model.
def alpha_sigma_lambda(t):
    if t < 0:
        return 1.0, 0.0, math.inf
    a, s = math.sqrt(ac[t]), math.sqrt(1 - ac[t])
    return a, s, math.log(a) - math.log(s)

def x0_from_eps(x, e, t):
    a, s, _ = alpha_sigma_lambda(t)
    return (x - s * e) / a

# step 1 (first order) from 700 to 500 with x = 0.3, eps = -0.7
x, e = 0.3, -0.7
m1 = x0_from_eps(x, e, 700)
a5, s5, l5 = alpha_sigma_lambda(500)
a7, s7, l7 = alpha_sigma_lambda(700)
h = l5 - l7
x500 = (s5 / s7) * x - a5 * (math.exp(-h) - 1) * m1
print('dpm++ step 1 (700->500) x0', m1, 'prev', x500)
# step 2 (second order) from 500 to 300 with x = 0.45, eps = 0.2, using m1 from step 1
x2, e2 = 0.45, 0.2
m0 = x0_from_eps(x2, e2, 500)
a3, s3, l3 = alpha_sigma_lambda(300)
h = l3 - l5
h0 = l5 - l7
r0 = h0 / h
D0, D1_ = m0, (1 / r0) * (m0 - m1)
x300 = (s3 / s5) * x2 - a3 * (math.exp(-h) - 1) * D0 - 0.5 * a3 * (math.exp(-h) - 1) * D1_  # diffusers "midpoint"
Dpaper = (1 + 1 / (2 * r0)) * m0 - 1 / (2 * r0) * m1                                          # Lu et al. Algorithm 2
x300p = (s3 / s5) * x2 - a3 * (math.exp(-h) - 1) * Dpaper
x300first = (s3 / s5) * x2 - a3 * (math.exp(-h) - 1) * m0
print('dpm++ step 2 (500->300) x0', m0, 'r', r0, 'prev (diffusers form)', x300, '(paper form)', x300p, 'first-order', x300first)
# step 3, the last (300 -> alpha_bar = 1) with x = -0.1, eps = 0.5: x0 itself
print('dpm++ last step', x0_from_eps(-0.1, 0.5, 300))
