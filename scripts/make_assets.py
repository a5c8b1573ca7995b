"""Draw the example stills in assets/ (deterministic; run from the repo root).

They are drawn rather than photographed so the repository owns every pixel.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

W, H = 832, 480
OUT = Path("assets")


def vertical_gradient(top: tuple[int, int, int], bottom: tuple[int, int, int], height: int = H) -> np.ndarray:
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    col = (1 - t) * np.array(top) + t * np.array(bottom)
    return np.repeat(col, W, axis=1)


def grain(img: Image.Image, amount: float, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = np.asarray(img).astype(np.float32)
    arr += rng.normal(0, amount, arr.shape[:2])[..., None]
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def lighthouse() -> Image.Image:
    sky = vertical_gradient((48, 36, 96), (250, 150, 80), 300)
    sea = vertical_gradient((40, 50, 90), (10, 15, 35), H - 300)
    img = Image.fromarray(np.concatenate([sky, sea]).astype(np.uint8))
    d = ImageDraw.Draw(img)
    d.ellipse((520, 250, 600, 330), fill=(255, 200, 120))  # setting sun, half under the horizon
    d.rectangle((0, 300, W, H), fill=None)
    img.paste(Image.fromarray(sea.astype(np.uint8)), (0, 300))
    for i in range(40):  # sun glitter on the water
        y = 305 + i * 4
        half = 60 - i
        d.line((560 - half, y, 560 + half, y), fill=(240, 160, 90), width=1)
    d.polygon([(170, 330), (110, 380), (0, 400), (0, 480), (320, 480), (300, 380)], fill=(20, 18, 24))  # rocks
    d.polygon([(190, 150), (226, 150), (238, 335), (178, 335)], fill=(28, 24, 30))  # tower
    d.rectangle((182, 126, 234, 150), fill=(255, 236, 170))  # lamp room
    d.polygon([(176, 126), (208, 100), (240, 126)], fill=(28, 24, 30))
    d.polygon([(234, 130), (W, 60), (W, 170), (234, 146)], fill=(255, 230, 170))  # beam
    img = Image.blend(img, img.filter(ImageFilter.GaussianBlur(6)), 0.35)
    return grain(img, 6, 1)


def neon_street() -> Image.Image:
    img = Image.fromarray(vertical_gradient((10, 12, 30), (25, 20, 40)).astype(np.uint8))
    d = ImageDraw.Draw(img)
    rng = np.random.default_rng(2)
    colours = [(255, 40, 120), (40, 220, 255), (255, 180, 40), (140, 80, 255)]
    for x in range(0, W, 70):  # building fronts
        top = int(rng.integers(20, 140))
        d.rectangle((x, top, x + 64, 300), fill=(18 + x % 20, 16, 28))
        for _ in range(3):
            c = colours[int(rng.integers(len(colours)))]
            y = int(rng.integers(top + 10, 280))
            d.rectangle((x + 8, y, x + 56, y + 12), fill=c)
    d.rectangle((0, 300, W, H), fill=(12, 12, 20))
    street = img.crop((0, 0, W, 300)).transpose(Image.Transpose.FLIP_TOP_BOTTOM).resize((W, 180))
    street = street.filter(ImageFilter.GaussianBlur(5))
    img.paste(Image.blend(Image.new("RGB", street.size, (10, 10, 18)), street, 0.55), (0, 300))
    d = ImageDraw.Draw(img)
    d.ellipse((400, 190, 424, 214), fill=(8, 8, 12))  # a figure under the signs
    d.polygon([(396, 214), (428, 214), (436, 320), (388, 320)], fill=(8, 8, 12))
    for _ in range(260):  # rain
        x, y = int(rng.integers(0, W)), int(rng.integers(0, H))
        d.line((x, y, x - 3, y + 14), fill=(120, 130, 160), width=1)
    return grain(img, 8, 3)


def desert_road() -> Image.Image:
    sky = vertical_gradient((70, 130, 210), (190, 215, 235), 230)
    sand = vertical_gradient((214, 170, 110), (170, 115, 70), H - 230)
    img = Image.fromarray(np.concatenate([sky, sand]).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for k in range(4):  # dunes
        pts = [(x, 230 + 25 * k + 18 * math.sin(x / (90 + 30 * k) + k)) for x in range(0, W + 8, 8)]
        d.polygon(pts + [(W, H), (0, H)], fill=(200 - 18 * k, 150 - 14 * k, 95 - 8 * k))
    d.polygon([(405, 232), (427, 232), (720, H), (110, H)], fill=(52, 50, 56))  # road to the horizon
    for i in range(8):
        y0 = 240 + i * i * 4
        d.line((416, y0, 416, y0 + 4 + i * 2), fill=(230, 210, 120), width=1 + i // 2)
    d.rectangle((380, 300, 440, 330), fill=(160, 30, 30))  # a red car
    d.rectangle((392, 286, 428, 302), fill=(120, 20, 20))
    img = img.filter(ImageFilter.GaussianBlur(0.8))
    return grain(img, 5, 4)


# Stills for the toy model (its world is shapes on backgrounds at 64 x 112): scenes no training set holds, each with
# a prompt in the toy vocabulary, one naming a move and one content only (which the toy base keeps still).
TOY_SEED = 4242
TOY_MOVES = ("pan-left", None, "dolly-in", "tilt-up")


def toy_stills() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cinescene.toy import footage

    out = OUT / "toy"
    out.mkdir(exist_ok=True)
    lines = ["# One prompt per line, for the toy model's stills beside this file (scripts/make_assets.py)."]
    for i, move in enumerate(TOY_MOVES):
        scene = footage.random_scene(np.random.default_rng([TOY_SEED, i]))
        Image.fromarray(footage.render_clip(scene, "neutral", "static", 1, 64, 112)[0]).save(out / f"toy{i}.png")
        lines.append(f"toy{i}.png\t{footage.caption(scene, move) if move else footage.describe(scene)}")
    (out / "prompts.txt").write_text("\n".join(lines) + "\n")


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, draw in (("lighthouse", lighthouse), ("neon_street", neon_street), ("desert_road", desert_road)):
        draw().save(OUT / f"{name}.jpg", quality=90)
    toy_stills()


if __name__ == "__main__":
    main()
