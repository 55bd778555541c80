"""models/README.md rendered from the model card that `diffusion-lab evaluate` writes."""

from __future__ import annotations

from app.evaluation.markdown import table

ATTRIBUTES = ("shape", "colour", "size", "position")


def _summary_sentence(summary: dict) -> str:
    text = f"All-attribute adherence peaks at s = {summary['best_scale']:g} ({summary['best_all']:.3f})"
    if summary["first_drop_scale"] is None:
        return text + f"; above it no attribute falls below {summary['threshold']:g}."
    return (text + f"; above it, {summary['first_drop_attribute']} is the first to fall below "
            f"{summary['threshold']:g} ({summary['first_drop_value']:.3f} at s = {summary['first_drop_scale']:g}).")


def _pair_sections(pairs: dict | None) -> list[str]:
    """Two-shape adherence per category against s, the binding failures, and the guidance variants."""
    if not pairs:
        return []
    vae, judged = pairs["vae"], pairs["judge_on_pairs"]["accuracy"]
    ceiling = (f"The VAE reconstructs {vae['scenes']} held-out two-shape scenes at {vae['psnr_db_mean']:.2f} dB and the "
               f"judge reads {vae['judge_reconstructions']['all']:.1%} of them right (the ceiling of every model on "
               "these latents); the judge itself reads " + ", ".join(f"{k} {v:.1%}" for k, v in judged.items())
               + f" of {pairs['judge_on_pairs']['scenes']} rendered pairs.")
    if pairs.get("not_measured"):
        return ["## Two shapes: binding, relations, counting", "", f"Adherence {pairs['not_measured']}.", "",
                ceiling, ""]
    st, cats = pairs["settings"], pairs["settings"]["categories"]
    rows = [[f"{r['scale']:g}", *(f"{r['categories'][c]['all']:.3f}" for c in cats), f"{r['two_object_all']:.3f}",
             *(f"{r['failures'][f]:.3f}" for f in ("swap", "leak", "copy"))] for r in pairs["sweep"]]
    summary = pairs["summary"]
    rise = "; ".join(f"{c} {summary[c]['at_first_scale']:.2f} at s = {summary[c]['first_scale']:g} -> "
                     f"{summary[c]['best_all']:.2f} at s = {summary[c]['best_scale']:g}" for c in cats)
    variants = [[v["variant"], f"{b['scale']:g}", f"{b['all']:.3f}", f"{b['diversity_rms']:.3f}",
                 "" if b["over_saturation"] is None else f"{b['over_saturation']:+.3f}"]
                for v in pairs["guidance_variants"] for b in v["by_scale"]]
    return [
        "## Two shapes: binding, relations, counting against s",
        "",
        f"{st['prompts']} prompts per category x {st['seeds']} seeds, {st['steps']} `{st['sampler']}` steps, read by "
        "the pair judge (`app/measure/pair_judge.py`): a column is the share of images doing everything the "
        "prompt asks (exactly two clean shapes, each named shape with its named attributes, the relation held). "
        "*Colour binding*: `a red circle and a blue square`; *size binding*: `a small circle and a large "
        "square`; *relation*: `a red circle left of a blue square`; *counting*: `two red circles`. A *swap* "
        "draws both shapes with their colours or shapes exchanged, a *leak* both in one of the asked colours, a "
        "*copy* both as one of the asked shapes (each counted where the prompt names two different values).",
        "",
        table(["s", *cats, "all categories", "swap", "leak", "copy"], rows),
        "",
        f"From s = 1 to the best s: {rise}.",
        "",
        ceiling,
        "",
        "## Guidance variants on two-shape prompts",
        "",
        f"The same {st['variant_prompts']} prompts per category x {st['variant_seeds']} seeds, `ddim` (which CFG++ "
        "needs): plain CFG (EQ MM3.4), CFG with rescale 0.7, CFG only between t = 200 and 799, adaptive "
        "projected guidance (APG) and CFG++ (its scale is a lambda in [0, 1]). *Over-saturation* is the drawn "
        "shapes' HSV saturation minus their palette colour's (positive: burnt colours).",
        "",
        table(["variant", "s", "all", "diversity", "over-saturation"], variants),
        "",
    ]


def _best(summary: dict | None, key: str = "best_all") -> str:
    return "" if not summary else f"{summary[key]:.3f} (s = {summary['best_scale']:g})"


def _family_sections(families: dict | None) -> list[str]:
    """Chapter §3.4's three families side by side, the VQ tokenizer's ceiling and the autoregressive likelihood."""
    if not families or not families.get("families"):
        return []
    st = families["settings"]
    rows = []
    for name, f in families["families"].items():
        tm, pairs = f["timing"], f["pairs_summary"]
        best = f["summary"]["best_scale"]
        diversity = next(r["diversity_rms"] for r in f["guidance_sweep"] if r["scale"] == best)
        rows.append([name, _best(f["summary"]), f"{diversity:.3f}",
                     _best(pairs["two_object_all"]) if pairs else "not measured",
                     str(tm["network_forwards"]), f"{tm['single_image_s_median']:.2f}",
                     f"{tm['batch_s_per_image']:.3f}"])
    per_scale = [[name, f"{r['scale']:g}", *(f"{r['adherence'][k]:.3f}" for k in (*ATTRIBUTES, "all")),
                  f"{r['diversity_rms']:.3f}"]
                 for name, f in families["families"].items() for r in f["guidance_sweep"]]
    lines = [
        "## Three families on the same prompts (chapter §3.4)",
        "",
        f"The diffusion model beside an autoregressive and a masked (MaskGIT) transformer over a VQ tokenizer's "
        f"tokens, on the same {st['prompts']} full one-shape prompts x {st['seeds']} seeds and {st['pair_prompts']} "
        f"two-shape prompts per category x {st['pair_seeds']} seeds, at s = "
        + ", ".join(f"{s:g}" for s in st["scales"]) + " (guidance on the noise estimate, or on the logits), read "
        f"by the same judges. Token families: temperature {st['temperature']:g}, top-k "
        f"{st['top_k'] or 'off'}, {st['rounds']} masked rounds; diffusion: {st['steps']} `{st['sampler']}` steps. "
        "*Forwards* are the sequential network forwards one image takes (one per token for the autoregressive "
        "model, one per round for the masked one, one per step for diffusion); seconds include decoding.",
        "",
        table(["family", "one shape, all right (best s)", "diversity", "two shapes, all right (best s)",
               "forwards", "s / image", "s / image in a batch"], rows),
        "",
        table(["family", "s", *ATTRIBUTES, "all", "diversity"], per_scale),
        "",
    ]
    if tok := families.get("tokenizer"):
        lines += [f"The VQ tokenizer (f = {tok['downsample_factor']}, {tok['tokens_per_image']} tokens per image, "
                  f"K = {tok['codebook_size']} codes of dimension {tok['code_dim']}, {tok['parameters']:,} "
                  f"parameters) reconstructs {tok['scenes']} held-out one-shape scenes at {tok['psnr_db']:.2f} dB "
                  f"and two-shape ones at {tok['pair_psnr_db']:.2f} dB; the judges read {tok['judge_all']:.1%} and "
                  f"{tok['pair_judge_all']:.1%} of its reconstructions right: the ceiling of both token models "
                  f"(the diffusion model's continuous VAE on the same scenes: {tok['vae_psnr_db']:.2f} and "
                  f"{tok['vae_pair_psnr_db']:.2f} dB, {tok['vae_judge_all']:.1%} and {tok['vae_pair_judge_all']:.1%}). "
                  f"It uses {tok['codes_used']:.0f} of its {tok['codebook_size']} codes (perplexity "
                  f"{tok['perplexity']:.0f}).", ""]
    if lik := families.get("likelihood"):
        lines += [f"The autoregressive model's exact likelihood (EQ MM3.5) of {lik['scenes']} held-out scenes' tokens "
                  f"given their full captions: {lik['bits_per_token']:.3f} bits per token "
                  f"({lik['bits_per_image']:.0f} bits per image; a uniform guess over the codebook costs "
                  f"{lik['uniform_bits_per_token']:.0f} bits per token).", ""]
    return lines


def render_readme(card: dict) -> str:
    """A short human page from the card: files, adherence and diversity per s, partial prompts, VAE, timing."""
    arch, ev, tm = card["architecture"], card["evaluation"], card["evaluation"]["timing"]
    st, vae, chance = ev["settings"], ev["vae"], ev["chance"]
    what = {"vae": f"VAE (EQ MM3.3): {arch['resolution']}x{arch['resolution']}x3 image <-> "
                   f"{'x'.join(map(str, arch['latent_shape'][1:]))}x{arch['latent_shape'][0]} latent, "
                   f"{arch['compression_ratio']:g}x fewer values",
            "text_encoder": "caption encoder: a small transformer over the caption's words",
            "denoiser": f"DiT denoiser with cross-attention to the caption, {arch['prediction']}-prediction"}
    files = [[f"`{arch[k]['file']}`", what[k], f"{arch[k]['parameters']:,}", f"{arch[k]['bytes'] / 2**20:.1f} MiB"]
             for k in ("vae", "text_encoder", "denoiser")]
    keys = ("shape", "colour", "size", "position", "clean", "all")
    sweep = [[f"{r['scale']:g}", *(f"{r['adherence'][k]:.3f}" for k in keys), f"{r['diversity_rms']:.3f}"]
             for r in ev["guidance_sweep"]]
    sweep.append(["chance", *(f"{chance[k]:.3f}" for k in ATTRIBUTES), "", f"{chance['all']:.4f}", ""])
    scales = [f"{b['scale']:g}" for b in ev["partial_prompts"][0]["by_scale"]] if ev["partial_prompts"] else []
    partial = [[f"{p['prompt']}", ", ".join(p["open"]),
                *("; ".join(f"{a} {v['distinct']}/{v['possible']}" for a, v in b["variety"].items())
                  + f" (all {b['adherence']['all']:.2f})" for b in p["by_scale"])] for p in ev["partial_prompts"]]
    judged = ev["judge_on_scenes"]["accuracy"]
    doc = card["training"].get("document")
    return "\n".join([
        "# The trained model",
        "",
        f"{card['description']} Generated by `{card['command']}` on {card['generated_at'][:10]} "
        f"({card['machine']['device']}, torch {card['machine']['torch']}); the full numbers are in "
        "[model-card.json](model-card.json), which `GET /api/v1/model` serves."
        + (f" How the weights were trained: [{doc}]({doc})." if doc else ""),
        "",
        "## Files",
        "",
        table(["file", "what", "parameters", "size"], files),
        "",
        "## Prompt adherence and diversity against the guidance scale s (EQ MM3.4)",
        "",
        f"{st['prompts']} full prompts (every shape x colour, sizes and positions balanced) x {st['seeds']} seeds, "
        f"{st['steps']} `{st['sampler']}` steps, each image read by the judge (`app/measure/judge.py`). An attribute "
        "column is the share of images showing what the prompt named; *clean* is one flat shape in a palette "
        "colour on a light background; *all* is every attribute right and clean. *Diversity* is the mean "
        "pairwise RMS distance between a prompt's images across seeds (pixels in [0, 1]). The chance row is "
        "what an image that ignores the prompt (s = 0) matches by luck.",
        "",
        table(["s", *keys, "diversity"], sweep),
        "",
        _summary_sentence(ev["summary"]),
        "",
        "## What a partial prompt leaves open",
        "",
        f"Distinct values the judge finds among {st['partial_seeds']} seeds for the attributes a prompt leaves "
        "open (out of how many exist), and the share of images right on everything the prompt names.",
        "",
        table(["prompt", "open", *(f"s = {s}" for s in scales)], partial),
        "",
        *_pair_sections(ev.get("pairs")),
        *_family_sections(ev.get("families")),
        "## VAE and judge",
        "",
        f"- VAE reconstruction of {vae['scenes']} held-out scenes: PSNR {vae['psnr_db_mean']:.2f} dB mean, "
        f"{vae['psnr_db_p05']:.2f} dB 5th percentile, {vae['psnr_db_min']:.2f} dB worst; the judge reads "
        f"{vae['judge_reconstructions']['all']:.1%} of reconstructions right on every attribute "
        f"({vae['judge_originals']['all']:.1%} of the originals).",
        f"- The judge on {ev['judge_on_scenes']['scenes']} rendered scenes: "
        + ", ".join(f"{k} {v:.1%}" for k, v in judged.items()) + ".",
        "",
        "## Timing",
        "",
        f"On {card['machine']['device']} ({tm['device']}, {tm['torch_threads']} torch threads), "
        f"{tm['steps']} `{tm['sampler']}` steps at s = {tm['guidance_scale']:g}, decode included: one image "
        f"{tm['single_image_s_median']:.2f} s (median), a batch of {tm['batch']} {tm['batch_s_median']:.2f} s "
        f"({tm['batch_s_per_image']:.3f} s per image); the machine's 1-minute load average was "
        f"{tm['load_average_1m'][0]:.1f} before and {tm['load_average_1m'][1]:.1f} after. "
        f"Parameters in all: {arch['total_parameters']:,}.",
        "",
        "## Reproduce",
        "",
        f"`{card['command']}` rewrites this page and model-card.json (about {card['duration_s'] / 60:.0f} min "
        "here); `diffusion-lab evaluate --quick` is a one-minute check.",
        "",
    ])
