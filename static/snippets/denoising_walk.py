# An oracle walks a 2-D latent from pure noise back to its clean value (EQ MM3.1-3.2)
import numpy as np

seed = 0
target = np.array([1.5, -0.8])        # x0: the clean latent the walk should end at
T = 40                                # timesteps t = 0 .. T-1
beta = np.linspace(0.001, 0.08, T)    # noise added at each step
alpha_bar = np.cumprod(1.0 - beta)    # EQ MM3.1: share of the signal left after step t

def predict_noise(x_t, t):
    """What a perfect eps_theta would answer: EQ MM3.1 solved for the noise."""
    return (x_t - np.sqrt(alpha_bar[t]) * target) / np.sqrt(1.0 - alpha_bar[t])

rng = np.random.default_rng(seed)
x = rng.normal(0.0, 1.0, size=2)      # x_T ~ N(0, I): start from static
for t in reversed(range(T)):
    eps = predict_noise(x, t)
    x0_guess = (x - np.sqrt(1.0 - alpha_bar[t]) * eps) / np.sqrt(alpha_bar[t])
    if t == 0:
        x = x0_guess                  # the last step keeps the clean guess
    else:                             # re-noise the guess to the next, lower noise level
        noise = rng.normal(0.0, 1.0, size=2)
        x = np.sqrt(alpha_bar[t - 1]) * x0_guess + np.sqrt(1.0 - alpha_bar[t - 1]) * noise

print("clean latent x0     :", target.round(3))
print("walk ended at       :", x.round(3))
print("distance to x0 (L2) :", float(np.linalg.norm(x - target).round(4)))
print("alpha_bar where the walk starts (t=T-1):", round(float(alpha_bar[-1]), 3),
      "| at its last step (t=0):", round(float(alpha_bar[0]), 3))
