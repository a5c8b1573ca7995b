"""A study's plots, drawn with PIL: each metric per arm with its interval, and scores over the training steps.

Hand-drawn because no plotting library is a dependency (matplotlib is not in requirements.txt, and pulling it in
for two charts would be most of its weight for little); PIL already draws the app's grids (``media.tile``). Each
figure is a grid of small panels, one per metric, with the value range of the panel on its y axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .. import atomic

PANEL_W, PANEL_H, COLUMNS = 300, 190, 3
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 58, 14, 26, 34
COLOURS = {"base": (110, 110, 110), "lora": (31, 119, 180), "full": (214, 39, 40)}
OTHER_COLOURS = [(44, 160, 44), (148, 103, 189), (140, 86, 75)]
AXIS, GRID, TEXT = (60, 60, 60), (225, 225, 225), (20, 20, 20)


@dataclass
class IntervalPanel:
    """One metric: each arm's value and 95% interval (None ends: no interval), and a value to compare with."""

    title: str
    labels: list[str]
    values: list[float | None]
    lows: list[float | None]
    highs: list[float | None]
    reference: float | None = None  # drawn as a dashed line (the held-out clips' own camera motion)


@dataclass
class LinePanel:
    """One score over the training steps: ``series[label]`` is a list of (step, value)."""

    title: str
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


def colour(label: str, index: int) -> tuple[int, int, int]:
    return COLOURS.get(label, OTHER_COLOURS[index % len(OTHER_COLOURS)])


def _tick(value: float, spacing: float) -> str:
    """A tick label with the decimals its spacing needs (1.0012 and 1.0024 stay apart)."""
    decimals = max(0, 1 - math.floor(math.log10(spacing))) if spacing > 0 else 2
    return f"{value:.{min(decimals, 8)}f}"


class _Axes:
    """Data to pixels inside one panel's plot box, y growing upwards."""

    def __init__(self, left: int, top: int, low: float, high: float, xs: tuple[float, float]) -> None:
        if not high > low:  # one value, or none: a range around it
            pad = abs(low) * 0.05 or 1.0
            low, high = low - pad, high + pad
        pad = (high - low) * 0.08
        self.low, self.high = low - pad, high + pad
        self.x0, self.x1 = xs if xs[1] > xs[0] else (xs[0] - 1, xs[0] + 1)
        self.left, self.top = left + MARGIN_L, top + MARGIN_T
        self.right, self.bottom = left + PANEL_W - MARGIN_R, top + PANEL_H - MARGIN_B

    def y(self, value: float) -> float:
        return self.bottom - (value - self.low) / (self.high - self.low) * (self.bottom - self.top)

    def x(self, value: float) -> float:
        return self.left + (value - self.x0) / (self.x1 - self.x0) * (self.right - self.left)

    def frame(self, draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont) -> None:
        spacing = (self.high - self.low) * 0.4
        for k in range(3):
            value = self.low + (self.high - self.low) * 0.1 + spacing * k
            y = self.y(value)
            draw.line([(self.left, y), (self.right, y)], fill=GRID)
            draw.text((self.left - 4, y), _tick(value, spacing), fill=TEXT, font=font, anchor="rm")
        draw.rectangle([self.left, self.top, self.right, self.bottom], outline=AXIS)


def _canvas(count: int, header: int) -> tuple[Image.Image, ImageDraw.ImageDraw, ImageFont.ImageFont]:
    rows = max(1, math.ceil(count / COLUMNS))
    image = Image.new("RGB", (PANEL_W * min(COLUMNS, max(count, 1)), header + rows * PANEL_H), "white")
    return image, ImageDraw.Draw(image), ImageFont.load_default()


def _finite(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def interval_chart(panels: list[IntervalPanel], path: Path, title: str) -> Path:
    """Per panel, each arm as a dot at its value with a bar over its interval; written as a PNG."""
    header = 22
    image, draw, font = _canvas(len(panels), header)
    draw.text((8, 6), title, fill=TEXT, font=font)
    for n, panel in enumerate(panels):
        left, top = (n % COLUMNS) * PANEL_W, header + (n // COLUMNS) * PANEL_H
        span = _finite(panel.values + panel.lows + panel.highs + [panel.reference])
        axes = _Axes(left, top, min(span, default=0.0), max(span, default=1.0), (-0.5, len(panel.labels) - 0.5))
        draw.text((left + 8, top + 6), panel.title, fill=TEXT, font=font)
        axes.frame(draw, font)
        if panel.reference is not None and math.isfinite(panel.reference):
            y = axes.y(panel.reference)
            for x in range(axes.left, axes.right, 8):
                draw.line([(x, y), (min(x + 4, axes.right), y)], fill=AXIS, width=1)
        for k, label in enumerate(panel.labels):
            x, fill = axes.x(k), colour(label, k)
            draw.text((x, axes.bottom + 6), label, fill=TEXT, font=font, anchor="mt")
            low, high, value = panel.lows[k], panel.highs[k], panel.values[k]
            if low is not None and high is not None and math.isfinite(low) and math.isfinite(high):
                y0, y1 = axes.y(low), axes.y(high)
                draw.line([(x, y0), (x, y1)], fill=fill, width=2)
                draw.line([(x - 6, y0), (x + 6, y0)], fill=fill, width=2)
                draw.line([(x - 6, y1), (x + 6, y1)], fill=fill, width=2)
            if value is not None and math.isfinite(value):
                y = axes.y(value)
                draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=fill)
            else:
                draw.text((x, axes.bottom - 12), "n/a", fill=TEXT, font=font, anchor="mm")
    return _save(image, path)


def line_chart(panels: list[LinePanel], path: Path, title: str) -> Path:
    """Per panel, each label's (step, value) points joined by lines, with a legend; written as a PNG."""
    header = 22
    image, draw, font = _canvas(len(panels), header)
    draw.text((8, 6), title, fill=TEXT, font=font)
    labels = list(dict.fromkeys(label for panel in panels for label in panel.series))
    x = max(8 + 7 * len(title), 260)
    for k, label in enumerate(labels):
        draw.line([(x, 11), (x + 18, 11)], fill=colour(label, k), width=3)
        draw.text((x + 22, 11), label, fill=TEXT, font=font, anchor="lm")
        x += 30 + 7 * len(label)
    for n, panel in enumerate(panels):
        left, top = (n % COLUMNS) * PANEL_W, header + (n // COLUMNS) * PANEL_H
        points = [p for series in panel.series.values() for p in series if math.isfinite(p[1])]
        steps = [p[0] for p in points] or [0.0, 1.0]
        axes = _Axes(left, top, min((p[1] for p in points), default=0.0), max((p[1] for p in points), default=1.0),
                     (min(steps), max(steps)))
        draw.text((left + 8, top + 6), panel.title, fill=TEXT, font=font)
        axes.frame(draw, font)
        for step in (axes.x0, axes.x1):
            draw.text((axes.x(step), axes.bottom + 6), f"{round(step)}", fill=TEXT, font=font, anchor="mt")
        draw.text(((axes.left + axes.right) / 2, axes.bottom + 20), "step", fill=TEXT, font=font, anchor="mt")
        for label, series in panel.series.items():
            fill = colour(label, labels.index(label))
            xy = [(axes.x(s), axes.y(v)) for s, v in sorted(series) if math.isfinite(v)]
            if len(xy) > 1:
                draw.line(xy, fill=fill, width=2)
            for px, py in xy if len(xy) <= 40 else ():  # dots for a few validations, a plain line for many steps
                draw.ellipse([px - 2.5, py - 2.5, px + 2.5, py + 2.5], fill=fill)
    return _save(image, path)


def _save(image: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path
