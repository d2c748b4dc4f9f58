"""Side-by-side comparison sheets: each row an original and its decodes, labelled."""
import numpy as np

PANEL = 384   # width of each panel in pixels


def comparison_sheet(rows, path):
    """rows: [(file name, [(label, H x W x 3 uint8), ...]), ...] -> one PNG, panels scaled to
    PANEL px wide (every decode of a row shares its original's size), a label above each."""
    from PIL import Image, ImageDraw
    label_h = 18
    panels = []
    for name, items in rows:
        row = []
        for label, pixels in items:
            im = Image.fromarray(np.ascontiguousarray(pixels))
            im = im.resize((PANEL, round(PANEL * im.height / im.width)), Image.LANCZOS)
            canvas = Image.new("RGB", (PANEL, im.height + label_h), "white")
            canvas.paste(im, (0, label_h))
            ImageDraw.Draw(canvas).text((4, 3), f"{name}: {label}" if not row else label, fill="black")
            row.append(canvas)
        panels.append(row)
    width = max(len(r) for r in panels) * PANEL
    height = sum(r[0].height for r in panels)
    sheet = Image.new("RGB", (width, height), "white")
    y = 0
    for r in panels:
        for i, p in enumerate(r):
            sheet.paste(p, (i * PANEL, y))
        y += r[0].height
    sheet.save(path)
    return path
