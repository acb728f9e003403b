"""Image model families (SD 1.x, 2.x, XL, 3.x, FLUX, SDXS): which one a configured model is, and
what its makers recommend, for the engine, the remote backend and the page."""
from __future__ import annotations

from core.contracts import FamilyDefaults
from settings import ImageModel

# What each family's makers recommend (SD3.5-medium: 40 steps, cfg 4.5 per its model card;
# SDXS is a one-step model that ignores cfg).
FAMILY_DEFAULTS = {
    "sd1": FamilyDefaults(512, 512, 20, 7.0),
    "sd2": FamilyDefaults(768, 768, 25, 7.0),
    "sdxl": FamilyDefaults(1024, 1024, 25, 6.0),
    "sd3": FamilyDefaults(1024, 1024, 40, 4.5),
    "flux": FamilyDefaults(1024, 1024, 20, 1.0),
    "sdxs": FamilyDefaults(512, 512, 1, 1.0),
}


def guess_family(cfg: ImageModel) -> str:
    if cfg.family != "auto":
        return cfg.family
    if cfg.clip_g_path or (cfg.t5xxl_path and cfg.clip_l_path and cfg.diffusion_model_path and "flux" not in
                           str(cfg.diffusion_model_path).lower()):
        return "sd3"
    main = cfg.model_path or cfg.diffusion_model_path
    name = main.name.lower() if main else ""
    for marker, family in (("sdxs", "sdxs"), ("sd3", "sd3"), ("flux", "flux"), ("xl", "sdxl"), ("sd2", "sd2"),
                           ("v2-", "sd2")):
        if marker in name:
            return family
    return "flux" if cfg.t5xxl_path else "sd1"


def family_defaults(cfg: ImageModel) -> FamilyDefaults:
    """The default size, steps and cfg of the configured model's family."""
    return FAMILY_DEFAULTS[guess_family(cfg)]
