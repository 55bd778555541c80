# Classifier-free guidance moves one noise estimate along the prompt's direction (EQ MM3.4)
import numpy as np

eps_uncond = np.array([0.20, -0.10, 0.05])   # the model's answer with the caption dropped
eps_cond = np.array([0.50, 0.30, 0.05])      # ... and with the caption
scales = [0.0, 1.0, 3.0, 7.5, 15.0]

def guide(s):
    """EQ MM3.4: from the unconditional estimate, s times the step towards the conditional one."""
    return eps_uncond + s * (eps_cond - eps_uncond)

norms = [float(np.linalg.norm(guide(s))) for s in scales]
print("    s   guided estimate          |guided|")
for s, norm in zip(scales, norms):
    print(f"{s:5.1f}   {str(guide(s).round(3)):<24} {norm:7.3f}")

print()
print("s = 0 drops the prompt, s = 1 is the conditional model itself; past 1 the")
print("estimate overshoots eps_cond and its size keeps growing: the burnt look of high CFG.")
plot_xy(scales, norms)
