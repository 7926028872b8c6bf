"""Independent golden values for test/math (numpy, float64). Run: /usr/bin/python3 test/math/golden/golden.py
Written from the papers' formulas (Ho et al. 2020; Nichol & Dhariwal 2021; Song et al. DDIM 2021; diffusers' documented
timestep spacings), not from lib/. Paper index s = 1..T  <->  code index t = s - 1."""
import numpy as np
np.set_printoptions(precision=17)

def from_betas(b):
    a = 1 - b
    ac = np.cumprod(a)
    acp = np.append(1.0, ac[:-1])
    pv = b * (1 - acp) / (1 - ac)
    return dict(betas=b, ac=ac, acp=acp, pv=pv,
                c1=b * np.sqrt(acp) / (1 - ac), c2=(1 - acp) * np.sqrt(a) / (1 - ac),
                snr=ac / (1 - ac), logpv=np.log(np.append(pv[1], pv[1:])))

T = 1000
lin = from_betas(np.linspace(1e-4, 0.02, T))
print('linear pv[0,487,999]', lin['pv'][[0, 487, 999]])
print('linear ac[999]', lin['ac'][999], 'ac[0]', lin['ac'][0], 'ac[499]', lin['ac'][499])
print('linear c1[487], c2[487]', lin['c1'][487], lin['c2'][487])
print('linear snr[0], snr[999]', lin['snr'][0], lin['snr'][999])
print('linear logpv[0], logpv[1]', lin['logpv'][0], lin['logpv'][1])

def cos_ab(u, s=0.008):
    f = lambda x: np.cos((x + s) / (1 + s) * np.pi / 2) ** 2
    return f(u) / f(0)
u = np.arange(T + 1) / T
cb = np.minimum(1 - cos_ab(u[1:]) / cos_ab(u[:-1]), 0.999)
cos = from_betas(cb)
print('cosine ac[0,499,998,999]', cos['ac'][[0, 499, 998, 999]])
print('cosine closed form ab((t+1)/T) at 0,499,998', cos_ab(np.array([1, 500, 999]) / T))
print('cosine betas[998], betas[999], n clipped', cb[998], cb[999], int((cb >= 0.999).sum()))

quad = np.linspace(np.sqrt(1e-4), np.sqrt(0.02), T) ** 2
print('quadratic betas[0,500,999]', quad[[0, 500, 999]], 'ac[999]', np.cumprod(1 - quad)[999])

sg = lambda x: 1 / (1 + np.exp(-x))
def sig_ab(u, start=-3, end=3, tau=1):
    vs, ve = sg(start / tau), sg(end / tau)
    return (ve - sg((u * (end - start) + start) / tau)) / (ve - vs)
sb = np.minimum(1 - sig_ab(u[1:]) / sig_ab(u[:-1]), 0.999)
print('sigmoid betas[0,500,999]', sb[[0, 500, 999]], 'ac[500]', np.cumprod(1 - sb)[500])

# DDIM spacings (diffusers DDIMScheduler.set_timesteps, steps_offset = 0)
def leading(T, n): return (np.arange(0, n) * (T // n)).round()[::-1].astype(int)
def trailing(T, n): return (np.round(np.arange(T, 0, -T / n)) - 1).astype(int)
def linsp(T, n): return np.linspace(0, T - 1, n).round()[::-1].astype(int)
for (TT, n) in [(1000, 10), (1000, 3), (1000, 7), (10, 4), (10, 10)]:
    print('spacing', TT, n, 'leading', list(leading(TT, n)), 'trailing', list(trailing(TT, n)), 'linspace', list(linsp(TT, n)))

# One DDIM step by hand (Song et al. eq. 12), linear T=1000, t=500 -> prev=400, x_t=0.3, eps=-0.7, z=0.25, eta=0.5
at, ap = lin['ac'][500], lin['ac'][400]
x, e, z, eta = 0.3, -0.7, 0.25, 0.5
x0 = (x - np.sqrt(1 - at) * e) / np.sqrt(at)
sig = eta * np.sqrt((1 - ap) / (1 - at)) * np.sqrt(1 - at / ap)
print('ddim step x0', x0, 'sigma', sig, 'prev', np.sqrt(ap) * x0 + np.sqrt(1 - ap - sig ** 2) * e + sig * z)
# Same with eta = 0 and last step (prev = -1, alpha_prev = 1)
a0 = lin['ac'][0]
x0b = (x - np.sqrt(1 - a0) * e) / np.sqrt(a0)
print('ddim last step prev', x0b)
# DDPM ancestral step at t=487: mean = c1*x0 + c2*x_t; sample = mean + sqrt(var)*z
x0c = (x - np.sqrt(1 - lin['ac'][487]) * e) / np.sqrt(lin['ac'][487])
mean = lin['c1'][487] * x0c + lin['c2'][487] * x
print('ddpm step posterior', mean + np.sqrt(lin['pv'][487]) * z, 'beta', mean + np.sqrt(lin['betas'][487]) * z)
