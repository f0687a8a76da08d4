"""The prescription token's codes: the Prescription ID as a Code 128 barcode and a QR code."""

from __future__ import annotations

import base64
import io

import barcode
import segno
from barcode.writer import SVGWriter


def token_images(prescription_id: str) -> dict[str, str]:
    """Return data URIs of the Prescription ID's Code 128 barcode and QR code (SVG)."""
    buffer = io.BytesIO()
    code = barcode.get("code128", prescription_id, writer=SVGWriter())
    code.write(
        buffer, options={"module_width": 0.35, "module_height": 14, "quiet_zone": 6, "write_text": True}
    )
    svg = base64.b64encode(buffer.getvalue()).decode()
    return {
        "barcode": f"data:image/svg+xml;base64,{svg}",
        "qr": segno.make(prescription_id, error="m").svg_data_uri(scale=5, border=4),
    }
