#!/usr/bin/env python3
"""Writes web/favicon.ico: the dashboard's icon (web/favicon.svg drawn in pixels), 16 and 32
pixels square, as 32-bit BMP images in one ICO file. Standard library only; run it after
changing the drawing (both files show the same picture: a rounded blue square holding three
white bars of different heights, the shards)."""
import os
import struct

BLUE = (0x2F, 0x6F, 0xD0)  # --accent of web/style.css
WHITE = (0xFF, 0xFF, 0xFF)


def pixel(x, y):
    """Colour (r, g, b, a) at (x, y) of a 32 x 32 drawing; y grows downwards."""
    r = 6  # corner radius
    cx = min(max(x, r), 31 - r)
    cy = min(max(y, r), 31 - r)
    if (x - cx) ** 2 + (y - cy) ** 2 > r * r:
        return (0, 0, 0, 0)
    # three bars: x in [7,11), [14,18), [21,25); tops at 16, 9, 13; bottom at 25
    for x0, top in ((7, 16), (14, 9), (21, 13)):
        if x0 <= x < x0 + 4 and top <= y < 25:
            return WHITE + (255,)
    return BLUE + (255,)


def bmp(size):
    """A 32-bit BMP (bottom-up rows, AND mask after) of the drawing scaled to size."""
    scale = 32 // size
    rows = []
    for y in reversed(range(size)):
        row = b""
        for x in range(size):
            # the average of the scale x scale block
            px = [pixel(x * scale + i, y * scale + j) for i in range(scale) for j in range(scale)]
            r, g, b, a = (sum(p[k] for p in px) // len(px) for k in range(4))
            row += bytes((b, g, r, a))
        rows.append(row)
    mask_row = b"\0" * (((size + 31) // 32) * 4)
    header = struct.pack("<IiiHHIIiiII", 40, size, size * 2, 1, 32, 0, 0, 0, 0, 0, 0)
    return header + b"".join(rows) + mask_row * size


def main():
    images = [(s, bmp(s)) for s in (16, 32)]
    out = struct.pack("<HHH", 0, 1, len(images))
    offset = 6 + 16 * len(images)
    for s, data in images:
        out += struct.pack("<BBBBHHII", s, s, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
    out += b"".join(d for _, d in images)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "web", "favicon.ico")
    with open(path, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
